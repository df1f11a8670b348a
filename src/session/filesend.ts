/**
 * moby.filesync.v1.FileSend/DiffCopy: buildkitd sends an exporter's output
 * to the client. One method, two payloads, told apart by the exporter the
 * call belongs to (metadata `buildkit-attachable-exporter-id`, the index in
 * SolveRequest.Exporters; missing means 0):
 *
 * - `tar`, and `oci`/`docker` as tarballs: BytesMessage chunks making one
 *   byte stream. The daemon half-closes and waits for the call's status, so
 *   OK is only sent once the sink says the bytes are durable.
 * - `local`: fsutil packets with the roles of FileSync reversed (the daemon
 *   sends, the client receives); one call per platform, concurrently.
 *
 * The method is registered raw: each call's messages are decoded here once
 * the exporter is known.
 */
import { GrpcStatusError, Status, defineService, type SessionService } from "../grpc/server.js";
import { bytesMessageData } from "../grpc/bytes-message.js";

export { bytesMessageData } from "../grpc/bytes-message.js";

/** Where one exporter's byte stream goes. */
export interface ByteSink {
  write(chunk: Buffer): Promise<void>;
  /** All bytes arrived: make them durable (flush, close). The daemon hears OK only after this. */
  finish(): Promise<void>;
  /** The stream broke off (the daemon cancelled, or a write failed). */
  abort(reason: Error): Promise<void>;
}

export type FileSendTarget =
  | {
      kind: "bytes";
      /**
       * Opens the sink for one stream; `md` holds the `exporter-md-*` values
       * (prefix removed: `containerimage.digest`, ...). Undefined means the
       * export is not wanted (answered ALREADY_EXISTS, which the daemon takes
       * as done).
       */
      open(md: Record<string, string>): Promise<ByteSink | undefined>;
    }
  | {
      kind: "fsutil";
      /** Runs the fsutil receiver over one call's raw packets; resolves once FIN was exchanged. */
      receive(messages: AsyncIterable<Buffer>, send: (packet: Buffer) => Promise<void>, signal: AbortSignal): Promise<void>;
    };

const EXPORTER_ID = "buildkit-attachable-exporter-id";
const MD_PREFIX = "exporter-md-";

/** The exporter index a call names; Go reads a missing or unparsable value as 0. */
export function exporterId(values: readonly string[]): number {
  const v = values[0];
  if (v === undefined || !/^\d+$/.test(v)) return 0;
  return Number(v);
}

export function fileSendService(targetOf: (exporterId: number) => FileSendTarget | undefined): SessionService {
  return defineService("moby.filesync.v1.FileSend", {
    raw: {
      DiffCopy: async (call) => {
        const id = exporterId(call.metadata(EXPORTER_ID));
        const target = targetOf(id);
        if (!target) throw new GrpcStatusError(Status.NOT_FOUND, `no output for exporter ${id} in this build`);
        if (target.kind === "fsutil") {
          await target.receive(call, (packet) => call.sendEncoded([packet]), call.signal);
          return;
        }
        const md: Record<string, string> = {};
        for (const key of call.metadataKeys()) {
          // Go's client joins repeated values with ",".
          if (key.startsWith(MD_PREFIX)) md[key.slice(MD_PREFIX.length)] = call.metadata(key).join(",");
        }
        const sink = await target.open(md);
        if (!sink) throw new GrpcStatusError(Status.ALREADY_EXISTS, "output not wanted");
        try {
          for await (const body of call) {
            const data = bytesMessageData(body);
            if (data.length) await sink.write(data);
          }
          // The iteration also ends when the daemon cancels: only a clean
          // half-close means the stream is complete.
          if (call.signal.aborted) throw new Error("buildkitd cancelled the export before it was complete");
          await sink.finish();
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e));
          await sink.abort(err);
          throw err;
        }
      },
    },
  });
}
