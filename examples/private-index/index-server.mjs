// A stand-in for a private package index: it answers only requests that
// carry the token in $EXAMPLE_TOKEN_FILE (re-read on every request, so the
// token can rotate) and logs whether each request was accepted.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";

const tokenFile = process.env.EXAMPLE_TOKEN_FILE;
const server = createServer((req, res) => {
  const want = readFileSync(tokenFile, "utf8").trim();
  const ok = req.headers.authorization === `Bearer ${want}` && req.url === "/simple/internal-pkg";
  process.stderr.write(`index: ${req.url} ${ok ? "accepted" : "rejected"}\n`);
  res.statusCode = ok ? 200 : 401;
  res.end(ok ? "internal-pkg 1.0 installed\n" : "unauthorized\n");
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
