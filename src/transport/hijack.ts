/**
 * The Control.Session byte pipe: a bidi call of BytesMessages over which
 * buildkitd (the HTTP/2 client there) reaches the session's gRPC server.
 * buildkit calls this grpchijack.
 */
import type { ClientCall } from "../grpc/client.js";
import type { FrameSink, H2ServerConnection } from "../grpc/h2-server.js";
import { bytesMessageHead, bytesMessagePieces } from "../grpc/bytes-message.js";

export interface HijackedPipe {
  /** Half-closes the call; the connection writes nothing after it. */
  readonly end: () => void;
  /** Settles (never rejects) when the call has ended and the connection has been told. */
  readonly done: Promise<void>;
}

/**
 * Carries one HTTP/2 server connection over a Control.Session call. What
 * the connection writes in one batch leaves as one BytesMessage whose data
 * are the batch's parts by reference (file content straight from its read
 * buffer); what arrives is handed over as views of the call's DATA chunks.
 * Backpressure: a congested call holds the connection's writes (its
 * streams' queues fill and their senders wait); inbound, HTTP/2 flow
 * control bounds what the daemon may send.
 */
export function hijack(call: ClientCall, serve: (sink: FrameSink) => H2ServerConnection): HijackedPipe {
  let ended = false;
  const sink: FrameSink = {
    write(parts, size, written) {
      if (ended || !call.writable) {
        written?.();
        return true;
      }
      const head = bytesMessageHead(size);
      return call.writeParts([head, ...parts], head.length + size, written);
    },
    onceDrained: (cb) => call.onceDrained(cb),
    end() {
      if (ended) return;
      ended = true;
      call.end();
    },
  };
  const conn = serve(sink);
  call.onMessagePieces((pieces) => {
    // Views into the DATA chunks, no copy (moby.buildkit.v1.BytesMessage is field 1, bytes).
    let data: Buffer[];
    try {
      data = bytesMessagePieces(pieces);
    } catch {
      // Not a BytesMessage: the tunnel cannot go on.
      call.cancel();
      conn.receiveEnd();
      return;
    }
    for (const d of data) conn.receive(d);
  });
  const done = call.status
    .then(
      () => undefined,
      () => undefined,
    )
    .then(() => conn.receiveEnd());
  return { end: () => sink.end(), done };
}
