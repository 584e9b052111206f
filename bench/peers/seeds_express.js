// The seeds' Express + ioredis idempotency middleware, as designed:
// GET the key; a completed response replays; otherwise SET NX PX takes a
// lease (409 when somebody holds it), the handler runs (here: forwards to
// the demo upstream), and SET stores the response with a TTL. 5xx answers
// release the key. No fingerprint check (the design has none).
'use strict';
const express = require('express');
const Redis = require('ioredis');
const { forward, listen } = require('./upstream');

const redis = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379');
const LEASE_MS = 10000;
const TTL_MS = 24 * 3600 * 1000;

function idempotency() {
  return async (req, res, next) => {
    const key = req.get('Idempotency-Key');
    if (!key) return next();
    const redisKey = `seeds:${req.method}:${req.path}:${key}`;
    try {
      const stored = await redis.get(redisKey);
      if (stored !== null) {
        const record = JSON.parse(stored);
        if (record.state === 'done') {
          return res.status(record.status).type(record.contentType)
            .send(Buffer.from(record.body, 'base64'));
        }
        return res.status(409).json({ error: 'request in progress' });
      }
      const taken = await redis.set(redisKey, '{"state":"running"}', 'PX', LEASE_MS, 'NX');
      if (taken !== 'OK') return res.status(409).json({ error: 'request in progress' });
      res.locals.complete = async (status, contentType, body) => {
        if (status >= 500) return redis.del(redisKey);
        return redis.set(redisKey, JSON.stringify({ state: 'done', status, contentType,
                                                    body: body.toString('base64') }),
                         'PX', TTL_MS);
      };
      return next();
    } catch (err) {
      return next(err);
    }
  };
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.use(express.raw({ type: () => true, limit: '10mb' }));
app.post('/payments', idempotency(), async (req, res, next) => {
  try {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await forward('POST', req.originalUrl, req.headers, body);
    if (res.locals.complete) await res.locals.complete(answer.status, answer.contentType, answer.body);
    res.status(answer.status).type(answer.contentType).send(answer.body);
  } catch (err) {
    next(err);
  }
});
listen(require('http').createServer(app));
