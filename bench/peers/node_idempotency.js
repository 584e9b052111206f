// @node-idempotency/core with its Redis storage adapter on Node's own http
// server, as the package's framework-free usage: onRequest() before the
// handler (a stored response replays; an in-flight key throws
// REQUEST_IN_PROGRESS -> 409; another body throws FINGERPRINT_MISSMATCH ->
// 422), the handler forwards to the demo upstream, onResponse() stores the
// answer. The package fingerprints the parsed JSON body, so the body is
// parsed as its framework integrations do.
'use strict';
const http = require('http');
const { Idempotency, IdempotencyError, IdempotencyErrorCodes } = require('@node-idempotency/core');
const { RedisStorageAdapter } = require('@node-idempotency/storage-adapter-redis');
const { forward, readBody, listen } = require('./upstream');

async function main() {
  const storage = new RedisStorageAdapter({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
  await storage.connect();
  const idempotency = new Idempotency(storage, { cacheTTLMS: 24 * 3600 * 1000 });

  const server = http.createServer(async (req, res) => {
    try {
      const raw = await readBody(req);
      let body;
      try { body = raw.length ? JSON.parse(raw.toString('utf8')) : undefined; } catch { body = undefined; }
      const params = { headers: req.headers, path: req.url, method: req.method, body };
      const cached = await idempotency.onRequest(params);
      if (cached) {
        res.writeHead(cached.additional.status, { 'content-type': cached.additional.contentType });
        return res.end(cached.body);
      }
      const answer = await forward(req.method, req.url, req.headers, raw);
      const text = answer.body.toString('utf8');
      if (answer.status < 500) {
        await idempotency.onResponse(params, {
          body: text, additional: { status: answer.status, contentType: answer.contentType } });
      }
      res.writeHead(answer.status, { 'content-type': answer.contentType });
      return res.end(text);
    } catch (err) {
      let status = 500;
      if (err instanceof IdempotencyError) {
        if (err.code === IdempotencyErrorCodes.REQUEST_IN_PROGRESS) status = 409;
        else if (err.code === IdempotencyErrorCodes.IDEMPOTENCY_FINGERPRINT_MISSMATCH) status = 422;
        else status = 400;
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: err.message }));
    }
  });
  listen(server);
}

main().catch((err) => { console.error(err); process.exit(1); });
