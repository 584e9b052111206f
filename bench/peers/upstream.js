// What every peer shares: forwarding a request to the same
// idem-demo-upstream that idem serve and nginx forward to (keep-alive
// connections, like their pools), reading the whole body first, and the
// port-file contract of idem serve ("listen=HOST:PORT").
'use strict';
const fs = require('fs');
const http = require('http');

const upstream = new URL(process.env.UPSTREAM_URL || 'http://127.0.0.1:8081');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });

// Forwards method, path, content type and body; resolves to
// { status, contentType, body } (body a Buffer).
function forward(method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const out = { 'content-type': headers['content-type'] || 'application/json',
                  'content-length': body.length };
    if (headers['idempotency-key'] !== undefined) out['idempotency-key'] = headers['idempotency-key'];
    const req = http.request({ host: upstream.hostname, port: upstream.port, method, path,
                               headers: out, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode,
                                    contentType: res.headers['content-type'] || '',
                                    body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// Listens on 127.0.0.1, any port, and writes the port file.
function listen(server) {
  server.keepAliveTimeout = 60000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    const file = process.env.PORT_FILE;
    if (file) fs.writeFileSync(file, `listen=127.0.0.1:${port}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

module.exports = { forward, readBody, listen };
