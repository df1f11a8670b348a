/**
 * moby.filesync.v1.FileSync/DiffCopy, sender side: buildkitd asks for a local
 * directory by name and we stream it in fsutil's packet protocol.
 *
 * STAT packets for every entry (ids count every STAT), an empty STAT at the
 * end of the walk, DATA chunks for each requested id ending with an empty
 * DATA, FIN answered with FIN.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { GrpcStatusError, Status, defineService, type CallContext, type ServiceCall, type SessionService } from "../grpc/server.js";
import { FIX, walkBatches, walkMemory, type MemoryDir } from "./fsutil/walk.js";
import { fsReason } from "../files.js";
import { timeSlicer } from "./slices.js";
import { addStatPacket, dataPacketHead, errPacket, finPacket, statPacket } from "./fsutil/wire.js";
import { FrameBatch } from "../grpc/frame.js";
import { ReadSlabs } from "./read-slabs.js";

/** DATA payload size; the receiver takes any size (Go's sender uses 32 KiB). */
const CHUNK = 256 * 1024;
/** Read slabs: four DATA payloads each. */
const SLAB = 4 * CHUNK;

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Reads a metadata list, undoing the URL escaping buildkitd applies when a value is not ASCII. */
export function mdValues(call: CallContext, key: string): string[] {
  const values = call.metadata(key);
  if (call.metadata(`${key}-encoded`).length) {
    return values.map((v) => decodeURIComponent(v.replace(/\+/g, " ")));
  }
  return values;
}

export interface FileSyncStats {
  /** Bytes of file content sent, per directory name. */
  bytesSent: Map<string, number>;
}

export type { MemoryDir } from "./fsutil/walk.js";

/** A local the session serves: a directory on disk, or files held in memory. */
export type LocalDir = string | MemoryDir;

export function fileSyncService(dirs: ReadonlyMap<string, LocalDir>, stats?: FileSyncStats): SessionService {
  return defineService("moby.filesync.v1.FileSync", {
    streams: {
      DiffCopy: (call) => diffCopy(call, dirs, stats),
      TarStream: () => Promise.reject(new GrpcStatusError(Status.UNIMPLEMENTED, "TarStream is not supported")),
    },
  });
}

async function diffCopy(call: ServiceCall<"moby.filesync.v1.FileSync", "DiffCopy">, dirs: ReadonlyMap<string, LocalDir>, stats?: FileSyncStats): Promise<void> {
  const name = mdValues(call, "dir-name")[0] ?? "";
  const root = dirs.get(name);
  if (root === undefined) throw new GrpcStatusError(Status.NOT_FOUND, `no access allowed to dir "${name}"`);

  const files = new Map<number, { path: string; size: number; data?: Buffer | undefined }>();
  const requests: number[] = [];
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  let finished = false;
  let error: Error | undefined;
  const fail = (e: Error): void => {
    error ??= e;
    finished = true;
    wake();
  };

  // Reader: REQ / FIN / ERR from the daemon (it never rejects).
  void (async () => {
    try {
      for await (const p of call) {
        if (p.type === "PACKET_REQ") requests.push(p.ID);
        else if (p.type === "PACKET_FIN") finished = true;
        else if (p.type === "PACKET_ERR") fail(new Error(`buildkitd ended the transfer: ${p.data.toString()}`));
        wake();
      }
    } catch (e) {
      fail(asError(e));
    }
    finished = true;
    wake();
  })();

  // Walker: a STAT packet per entry, then an empty STAT.
  const walker = (async () => {
    let id = 0;
    try {
      const options = {
        includePatterns: mdValues(call, "include-patterns"),
        excludePatterns: mdValues(call, "exclude-patterns"),
        followPaths: mdValues(call, "followpaths"),
      };
      // A batch of STAT packets leaves in one write.
      const packets = new FrameBatch();
      for await (const batch of typeof root === "string" ? walkBatches(root, options) : [[...walkMemory(root, options)]]) {
        // Set by the reader task while the walk awaits.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (finished) return;
        for (const entry of batch) {
          if (entry.requestable) files.set(id, { path: entry.absPath || entry.stat.path, size: Number(entry.stat.size), data: entry.data });
          id++;
          addStatPacket(packets, entry.stat);
        }
        await call.sendFrames(packets.take());
      }
      await call.sendEncoded([statPacket()]);
    } catch (e) {
      fail(asError(e));
    }
  })();

  // Requested files, in the order asked for.
  const served = new Set<number>();
  const breathe = timeSlicer();
  // Reads go into slabs that come back once the call has written them.
  const slabs = new ReadSlabs(SLAB);
  const sendFile = async (id: number, path: string, size: number, data?: Buffer): Promise<void> => {
    if (data) {
      for (let at = 0; at < data.length && !error; at += CHUNK) {
        const part = data.subarray(at, at + CHUNK);
        stats?.bytesSent.set(name, (stats.bytesSent.get(name) ?? 0) + part.length);
        await call.sendEncoded([dataPacketHead(id, part.length), part]);
      }
      await call.sendEncoded([dataPacketHead(id, 0)]);
      return;
    }
    const fd = openSync(path, "r");
    try {
      // The walk's size lets most files go in one read; a short read is the end.
      let want = Math.min(size + 1, CHUNK);
      for (;;) {
        const region = slabs.take(want);
        const n = readSync(fd, region.room, 0, want, null);
        if (n === 0 || error) break;
        const { bytes, release } = region.keep(n);
        stats?.bytesSent.set(name, (stats.bytesSent.get(name) ?? 0) + n);
        await call.sendEncoded([dataPacketHead(id, n), bytes], release);
        const pause = breathe();
        if (pause) await pause;
        if (n < want) break;
        want = CHUNK;
      }
    } finally {
      closeSync(fd);
    }
    await call.sendEncoded([dataPacketHead(id, 0)]);
  };
  for (;;) {
    if (error) break;
    const next = requests.shift();
    if (next !== undefined) {
      const file = files.get(next);
      if (file === undefined || served.has(next)) {
        fail(new Error(`invalid file request ${next}`));
        break;
      }
      served.add(next);
      try {
        await sendFile(next, file.path, file.size, file.data);
      } catch (e) {
        fail(new Error(`cannot read ${file.path}: ${fsReason(e)} (${FIX})`, { cause: e }));
        break;
      }
      continue;
    }
    // Set by the reader task while this loop awaits.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (finished) break;
    await new Promise<void>((resolve) => waiters.push(resolve));
  }
  await walker;
  if (error) {
    // fsutil's receiver reports an ERR packet's text; the status carries it too.
    await call.sendEncoded([errPacket(error.message)]).catch(() => undefined);
    throw new GrpcStatusError(Status.UNKNOWN, error.message);
  }
  await call.sendEncoded([finPacket()]);
}
