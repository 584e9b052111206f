// express-idempotency on Express. The package ships only an in-memory
// data adapter (an array scanned linearly on every request, so it slows
// down with every stored key) and a MongoDB one; to compare like with like
// it runs here with a small Redis data adapter (ioredis) implementing the
// package's IIdempotencyDataAdapter. The route handler checks isHit() as
// the package's README says and forwards to the demo upstream.
'use strict';
const express = require('express');
const Redis = require('ioredis');
const { idempotency, getSharedIdempotencyService } = require('express-idempotency');
const { forward, listen } = require('./upstream');

const redis = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379');
const TTL_MS = 24 * 3600 * 1000;
const prefix = 'express-idempotency:';

const redisAdapter = {
  async findByIdempotencyKey(key) {
    const value = await redis.get(prefix + key);
    return value === null ? null : JSON.parse(value);
  },
  async create(resource) {
    const taken = await redis.set(prefix + resource.idempotencyKey, JSON.stringify(resource),
                                  'PX', TTL_MS, 'NX');
    if (taken !== 'OK') throw new Error('Duplicate');
  },
  async update(resource) {
    await redis.set(prefix + resource.idempotencyKey, JSON.stringify(resource), 'PX', TTL_MS);
  },
  async delete(key) {
    await redis.del(prefix + key);
  },
};

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.use(express.json({ limit: '10mb' }));
const middleware = idempotency({ dataAdapter: redisAdapter });
// The package's middleware is async and Express 4 ignores a rejected
// promise: a lost create() race (two requests with one key at once) would
// leave the request unanswered, so it is answered 409 here.
app.post('/payments', (req, res, next) => {
  middleware(req, res, next).catch(() => {
    if (!res.headersSent) res.status(409).json({ error: 'request in progress' });
  });
}, async (req, res, next) => {
  if (getSharedIdempotencyService().isHit(req)) return;
  try {
    const raw = Buffer.from(JSON.stringify(req.body ?? {}));
    const answer = await forward('POST', req.originalUrl, req.headers, raw);
    res.status(answer.status).type(answer.contentType).send(answer.body.toString('utf8'));
  } catch (err) {
    next(err);
  }
});
listen(require('http').createServer(app));
