/**
 * moby.filesync.v1.FileSync/DiffCopy, sender side: buildkitd asks for a local
 * directory by name and we stream it in fsutil's packet protocol.
 *
 * STAT packets for every entry (ids count every STAT), an empty STAT at the
 * end of the walk, DATA chunks for each requested id ending with an empty
 * DATA, FIN answered with FIN.
 */
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import type { SessionService } from "./session.js";
import { walk } from "./fsutil/walk.js";

/** DATA payload size; the receiver takes any size (Go's sender uses 32 KiB). */
const CHUNK = 256 * 1024;
/** Files read and sent at once, as fsutil's sender does (it uses 4). */
const FILE_WORKERS = 4;
/** Files up to this size are read with one call instead of a stream. */
const SMALL_FILE = 1 << 20;

interface PacketIn {
  type: string;
  ID: number;
  data: Buffer;
}

/**
 * Reads a metadata list, undoing the URL escaping buildkitd applies when a
 * value is not ASCII. buildkitd sends one header field per value, but Node's
 * HTTP/2 layer joins repeated fields with ", " before grpc-js sees them, so
 * the values are split there again. (A pattern that itself contains ", "
 * cannot be told apart; buildkitd escapes commas only in `-encoded` lists.)
 */
export function mdValues(md: grpc.Metadata, key: string): string[] {
  const values = md.get(key).flatMap((v) => String(v).split(", ")).filter((v) => v !== "");
  if (md.get(`${key}-encoded`).length) {
    return values.map((v) => decodeURIComponent(v.replace(/\+/g, " ")));
  }
  return values;
}

export interface FileSyncStats {
  /** Bytes of file content sent, per directory name. */
  bytesSent: Map<string, number>;
}

export function fileSyncService(dirs: ReadonlyMap<string, string>, stats?: FileSyncStats): SessionService {
  return {
    name: "moby.filesync.v1.FileSync",
    handlers: {
      DiffCopy: (call: grpc.ServerDuplexStream<PacketIn, unknown>) => {
        void diffCopy(call, dirs, stats);
      },
      TarStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        call.emit("error", { code: grpc.status.UNIMPLEMENTED, details: "TarStream is not supported" });
      },
    },
  };
}

async function diffCopy(call: grpc.ServerDuplexStream<PacketIn, unknown>, dirs: ReadonlyMap<string, string>, stats?: FileSyncStats): Promise<void> {
  const name = mdValues(call.metadata, "dir-name")[0] ?? "";
  const root = dirs.get(name);
  if (root === undefined) {
    call.emit("error", { code: grpc.status.NOT_FOUND, details: `no access allowed to dir "${name}"` });
    return;
  }
  let failed = false;
  const fail = (message: string): void => {
    if (failed) return;
    failed = true;
    call.write({ type: "PACKET_ERR", data: Buffer.from(message) });
    call.emit("error", { code: grpc.status.UNKNOWN, details: message });
  };

  // grpc-js signals backpressure after 16 queued messages, which throttles
  // thousands of tiny STAT packets to a crawl, and 'drain' fires only once
  // the queue is empty, so every wait stalls the whole pipeline. Wait only
  // past a bound on what is queued: 16,384 STATs (about 40 bytes each, a
  // few MB) or 64 DATA chunks (16 MiB), so memory stays bounded however
  // large the context is.
  const write = async (packet: object, queueLimit = 16384): Promise<void> => {
    call.write(packet);
    if (call.writableLength > queueLimit) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          call.off("drain", done);
          call.off("close", done);
          resolve();
        };
        call.on("drain", done);
        call.on("close", done);
      });
    }
  };

  const files = new Map<number, string>();
  const requests: number[] = [];
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  let finished = false;

  // Reader: REQ / FIN / ERR from the daemon.
  call.on("data", (p: PacketIn) => {
    switch (p.type) {
      case "PACKET_REQ":
        requests.push(p.ID);
        wake();
        break;
      case "PACKET_FIN":
        finished = true;
        wake();
        break;
      case "PACKET_ERR":
        failed = true;
        finished = true;
        wake();
        break;
      default:
        break;
    }
  });
  call.on("end", () => {
    finished = true;
    wake();
  });
  call.on("error", () => {
    failed = true;
    finished = true;
    wake();
  });

  // Walker: STAT packets.
  const walker = (async () => {
    let id = 0;
    try {
      for await (const entry of walk(root, {
        includePatterns: mdValues(call.metadata, "include-patterns"),
        excludePatterns: mdValues(call.metadata, "exclude-patterns"),
        followPaths: mdValues(call.metadata, "followpaths"),
      })) {
        if (failed || finished) return;
        if (entry.requestable) files.set(id, entry.absPath);
        id++;
        await write({ type: "PACKET_STAT", stat: entry.stat });
      }
      await write({});
    } catch (e) {
      fail((e as Error).message);
    } finally {
      wake();
    }
  })();

  // Serve requests with a few workers; each file's chunks stay in order.
  const served = new Set<number>();
  const sendFile = async (id: number, path: string): Promise<void> => {
    const chunks: AsyncIterable<Buffer> | Buffer[] = await (async () => {
      const whole = await readFile(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ERR_FS_FILE_TOO_LARGE" || e.code === "EISDIR") return undefined;
        throw e;
      });
      if (whole !== undefined && whole.length <= SMALL_FILE) {
        const parts: Buffer[] = [];
        for (let o = 0; o < whole.length; o += CHUNK) parts.push(whole.subarray(o, o + CHUNK));
        return parts;
      }
      return createReadStream(path, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>;
    })();
    for await (const buf of chunks) {
      if (failed) return;
      stats?.bytesSent.set(name, (stats.bytesSent.get(name) ?? 0) + buf.length);
      await write({ type: "PACKET_DATA", ID: id, data: buf }, 64);
    }
    await write({ type: "PACKET_DATA", ID: id });
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      if (failed) return;
      const next = requests.shift();
      if (next !== undefined) {
        const path = files.get(next);
        if (path === undefined || served.has(next)) {
          fail(`invalid file request ${next}`);
          return;
        }
        served.add(next);
        try {
          await sendFile(next, path);
        } catch (e) {
          fail(`cannot read ${path}: ${(e as Error).message}`);
          return;
        }
        continue;
      }
      if (finished) return;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  try {
    await Promise.all(Array.from({ length: FILE_WORKERS }, worker));
    if (!failed) {
      await walker;
      await write({ type: "PACKET_FIN" });
      call.end();
    }
  } finally {
    await walker;
  }
}
