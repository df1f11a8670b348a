/**
 * containerd.services.content.v1.Content, served on the session: the
 * daemon reads and writes blobs of the client's OCI layouts through it
 * (local cache import and export, OCI-layout contexts, oci/docker exports
 * to a directory). Each call names its store in the metadata
 * `buildkit-attachable-store-id`; the daemon prepends its own value when it
 * merges metadata, so the first one counts.
 *
 * Info, Read, Write, Status, ListStatuses and Abort behave as containerd's
 * content server over its local store (the codes matter: the daemon
 * branches on NOT_FOUND, ALREADY_EXISTS, UNAVAILABLE and
 * FAILED_PRECONDITION). An ingest lives as long as its Write stream, so
 * Status and Abort see the writes in flight. Update, List and Delete (which
 * would edit or list a user's layout) answer UNIMPLEMENTED: the daemon
 * does not call them on session stores.
 */
import { GrpcStatusError, Status, defineService, type CallContext, type ServiceCall, type SessionService } from "../grpc/server.js";
import { Writer, varintSize } from "../grpc/protobuf-writer.js";
import type { WriteContentRequest__Output } from "../gen/types/containerd/services/content/v1/WriteContentRequest.js";
import type { WriteContentResponse } from "../gen/types/containerd/services/content/v1/WriteContentResponse.js";
import type { Timestamp } from "../gen/types/google/protobuf/Timestamp.js";
import type { Status as IngestStatusMessage } from "../gen/types/containerd/services/content/v1/Status.js";
import { LayoutError, type Ingest, type IngestStatus, type OciLayout } from "../oci/layout.js";

/** The metadata key naming the store a call is for. */
export const STORE_ID_HEADER = "buildkit-attachable-store-id";

type ContentCall<M extends "Read" | "Write"> = ServiceCall<"containerd.services.content.v1.Content", M>;

/** A layout error as the gRPC status it names; other errors pass as they are. */
function asStatus(e: unknown): unknown {
  if (e instanceof LayoutError) return new GrpcStatusError(Status[e.code], e.message);
  return e;
}

function timestamp(d: Date): Timestamp {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function statusMessage(s: IngestStatus): IngestStatusMessage {
  return { ref: s.ref, offset: s.offset, total: s.total, expected: s.expected, started_at: timestamp(s.startedAt), updated_at: timestamp(s.updatedAt) };
}

/** One `field<op>value` of a containerd filter, on a Status (whose only field is ref). */
function selector(term: string): (ref: string) => boolean {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:(==|!=|~=)\s*(.*?))?\s*$/s.exec(term);
  if (!m) throw new GrpcStatusError(Status.INVALID_ARGUMENT, `invalid filter ${JSON.stringify(term)}: want field, field==value, field!=value or field~=regexp`);
  const [, field, op, raw = ""] = m;
  let value = raw;
  if (/^".*"$/s.test(raw)) {
    try {
      value = JSON.parse(raw) as string;
    } catch {
      throw new GrpcStatusError(Status.INVALID_ARGUMENT, `invalid filter ${JSON.stringify(term)}: bad quoted value`);
    }
  } else if (/^\/.*\/$/s.test(raw)) value = raw.slice(1, -1);
  // An unknown field is absent: only "present" and "==" need it to be there.
  const get = (ref: string): string | undefined => (field === "ref" ? ref : undefined);
  if (op === undefined) return (ref) => get(ref) !== undefined;
  if (op === "==") return (ref) => get(ref) === value;
  if (op === "!=") return (ref) => (get(ref) ?? "") !== value;
  let re: RegExp;
  try {
    re = new RegExp(value);
  } catch {
    throw new GrpcStatusError(Status.INVALID_ARGUMENT, `invalid filter ${JSON.stringify(term)}: bad regular expression`);
  }
  return (ref) => re.test(get(ref) ?? "");
}

/**
 * containerd's filters over Status: each filter is terms joined by commas
 * (all must match); a status is listed when any filter matches, or when
 * there are none.
 */
function statusFilter(filters: readonly string[]): (ref: string) => boolean {
  const any = filters.filter((f) => f.trim() !== "").map((f) => f.split(",").map(selector));
  if (any.length === 0) return () => true;
  return (ref) => any.some((all) => all.every((m) => m(ref)));
}

/** ReadContentResponse{offset, data} up to the data's bytes, which follow it uncopied. */
function readResponseHead(offset: number, dataLength: number): Buffer {
  const w = new Writer(Buffer.allocUnsafe(1 + 10 + 1 + varintSize(dataLength)));
  w.uint(0x08, offset);
  w.buf[w.pos++] = 0x12;
  w.varint(dataLength);
  return w.buf.subarray(0, w.pos);
}

/**
 * The Content service over `stores`: store id → opener. A store is opened
 * the first time the daemon asks for it (an import's directory is only
 * touched then) and kept open for the session; a failed open is tried
 * again on the next call.
 */
export function contentService(stores: ReadonlyMap<string, () => Promise<OciLayout>>): SessionService {
  const opened = new Map<string, Promise<OciLayout>>();
  const choose = async (call: CallContext): Promise<OciLayout> => {
    const id = call.metadata(STORE_ID_HEADER)[0];
    if (id === undefined) throw new GrpcStatusError(Status.INVALID_ARGUMENT, `request lacks metadata "${STORE_ID_HEADER}"`);
    const open = stores.get(id);
    if (!open) throw new GrpcStatusError(Status.NOT_FOUND, `unknown store ${id}`);
    let layout = opened.get(id);
    if (!layout) {
      // Through a promise: an opener that throws at once is a failed open too.
      layout = Promise.resolve().then(open);
      opened.set(id, layout);
      layout.catch(() => opened.delete(id));
    }
    try {
      return await layout;
    } catch (e) {
      throw asStatus(e);
    }
  };

  return defineService("containerd.services.content.v1.Content", {
    unary: {
      Info: async (req, call) => {
        const layout = await choose(call);
        try {
          const info = await layout.info(req.digest);
          if (!info) throw new GrpcStatusError(Status.NOT_FOUND, `content ${req.digest}: not found`);
          return { info: { digest: info.digest, size: info.size, created_at: timestamp(info.createdAt), updated_at: timestamp(info.updatedAt) } };
        } catch (e) {
          throw asStatus(e);
        }
      },
      Status: async (req, call) => {
        const status = (await choose(call)).ingestStatus(req.ref);
        if (!status) throw new GrpcStatusError(Status.NOT_FOUND, `ref ${req.ref}: not found`);
        return { status: statusMessage(status) };
      },
      ListStatuses: async (req, call) => {
        const match = statusFilter(req.filters);
        return { statuses: (await choose(call)).ingestStatuses(match).map(statusMessage) };
      },
      Abort: async (req, call) => {
        const layout = await choose(call);
        try {
          await layout.abortIngest(req.ref);
        } catch (e) {
          throw asStatus(e);
        }
        return {};
      },
    },
    streams: {
      Read: (call) => read(call, choose),
      Write: (call) => write(call, choose),
    },
  });
}

async function read(call: ContentCall<"Read">, choose: (call: CallContext) => Promise<OciLayout>): Promise<void> {
  const first = await call[Symbol.asyncIterator]().next();
  if (first.done) throw new GrpcStatusError(Status.INVALID_ARGUMENT, "no request message");
  const req = first.value;
  const layout = await choose(call);
  const start = Math.max(0, Number(req.offset));
  let offset = start;
  try {
    for await (const chunk of layout.read(req.digest, start, Number(req.size))) {
      // The daemon cancels once it has what it asked for; stop reading then.
      if (call.signal.aborted) return;
      await call.sendEncoded([readResponseHead(offset, chunk.length), chunk]);
      offset += chunk.length;
    }
  } catch (e) {
    throw asStatus(e);
  }
}

/**
 * One blob per stream: STAT to negotiate and query, WRITE to append (or
 * restart at offset 0), COMMIT to check and store; exactly one response per
 * request. A stream that ends without COMMIT drops what it wrote.
 */
async function write(call: ContentCall<"Write">, choose: (call: CallContext) => Promise<OciLayout>): Promise<void> {
  const messages = call[Symbol.asyncIterator]();
  let next = await messages.next();
  if (next.done) return;
  let req: WriteContentRequest__Output = next.value;
  const ref = req.ref;
  if (ref === "") throw new GrpcStatusError(Status.INVALID_ARGUMENT, "first message must have a reference");
  const layout = await choose(call);
  const firstTotal = Number(req.total);
  let ingest: Ingest;
  try {
    ingest = await layout.ingest(ref, req.expected || undefined, firstTotal > 0 ? firstTotal : undefined);
  } catch (e) {
    throw asStatus(e);
  }
  try {
    for (;;) {
      // An enum value this proto does not name decodes as its number.
      const action: string | number = req.action;
      if (req.expected !== "") {
        // A blob that is already stored ends the write: the daemon takes ALREADY_EXISTS as success.
        ingest.expected = req.expected;
        if (await layout.info(req.expected)) throw new GrpcStatusError(Status.ALREADY_EXISTS, `blob with expected digest ${req.expected} exists`);
      }
      const total = Number(req.total);
      if (total > 0) ingest.total = total;
      let res: WriteContentResponse;
      if (action === "STAT") {
        res = {
          action,
          offset: ingest.offset,
          total: ingest.total,
          digest: ingest.digest(),
          started_at: timestamp(ingest.startedAt),
          updated_at: timestamp(ingest.updatedAt),
        };
      } else if (action === "WRITE" || action === "COMMIT") {
        const offset = Number(req.offset);
        if (offset > 0 && offset !== ingest.offset) {
          throw new GrpcStatusError(Status.OUT_OF_RANGE, `write @${offset} must occur at current offset ${ingest.offset}`);
        }
        if (offset === 0 && ingest.offset > 0) await ingest.truncate();
        await ingest.write(req.data);
        let digest = ingest.digest();
        if (action === "COMMIT") {
          const done = await ingest.commit(ingest.total, ingest.expected || undefined);
          if (done.existed) throw new GrpcStatusError(Status.ALREADY_EXISTS, `content ${done.digest}: already exists`);
          digest = done.digest;
        }
        res = { action, offset: ingest.offset, digest };
      } else {
        throw new GrpcStatusError(Status.INVALID_ARGUMENT, `unknown write action ${action}`);
      }
      await call.send(res);
      if (action === "COMMIT") return;
      next = await messages.next();
      if (next.done) return;
      req = next.value;
    }
  } catch (e) {
    throw asStatus(e);
  } finally {
    // Nothing to do after a commit; otherwise the partial bytes go.
    await ingest.abort();
  }
}
