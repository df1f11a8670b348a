/** grpc.health.v1.Health: buildkitd checks that the session is alive while it uses it. */
import { defineService, type SessionService } from "../grpc/server.js";

export function healthService(): SessionService {
  return defineService("grpc.health.v1.Health", {
    unary: {
      Check: () => Promise.resolve({ status: "SERVING" }),
    },
    streams: {
      Watch: async (call) => {
        await call.send({ status: "SERVING" });
        await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve(), { once: true }));
      },
    },
  });
}
