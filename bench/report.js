// Turns one benchmark run (the files scripts/bench collected in RUN_DIR)
// into docs/benchmarks.md and the PNG charts under docs/img/ (gnuplot).
//
//   node bench/report.js RUN_DIR DOCS_DIR
//
// Inputs in RUN_DIR: run-meta.sh, http-rounds.tsv + http-meta.sh
// (bench/gateway/run.sh), micro-*.json (bench/micro.sh), fill-*.tsv +
// scaling-meta.sh (bench/scaling.sh). Every figure of an HTTP cell is the
// median over its rounds, each figure on its own (a single outlier round
// moves none of them).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const [runDir, docsDir] = process.argv.slice(2);
if (!runDir || !docsDir) {
  console.error('usage: node bench/report.js RUN_DIR DOCS_DIR');
  process.exit(2);
}
const imgDir = path.join(docsDir, 'img');
fs.mkdirSync(imgDir, { recursive: true });
const read = (name) => fs.readFileSync(path.join(runDir, name), 'utf8');
const exists = (name) => fs.existsSync(path.join(runDir, name));

// key=value lines (several per line allowed), values optionally quoted.
function readMeta(name) {
  const meta = {};
  if (!exists(name)) return meta;
  for (const m of read(name).matchAll(/(\w+)=("([^"]*)"|(\S*))/g)) meta[m[1]] = m[3] ?? m[4];
  return meta;
}
const meta = { ...readMeta('run-meta.sh'), ...readMeta('http-meta.sh'), ...readMeta('scaling-meta.sh') };

function readTsv(name) {
  if (!exists(name)) return [];
  const [header, ...lines] = read(name).trim().split('\n');
  const cols = header.split('\t');
  return lines.filter((l) => l.trim()).map((l) => {
    const row = {};
    l.split('\t').forEach((v, i) => { row[cols[i]] = /^-?[0-9.e+]+$/.test(v) ? Number(v) : v; });
    return row;
  });
}

const median = (values) => {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};
const fmt = (v, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const int = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const ms = (us) => fmt(us / 1000, 2);
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);

// ---- HTTP cells
const rounds = readTsv('http-rounds.tsv');
function cell(group, system, workload, conns, body) {
  const rs = rounds.filter((r) => r.group === group && r.system === system && r.workload === workload &&
    (conns === undefined || r.connections === conns) && (body === undefined || r.body === body));
  const m = (k) => median(rs.map((r) => r[k]));
  return { n: rs.length, rps: m('rps'), p50: m('p50_us'), p99: m('p99_us'), p999: m('p999_us'),
           errors: m('status_errors'), socket: m('socket_errors'),
           executions: median(rs.map((r) => r.executions / r.requests)),
           errorShare: median(rs.map((r) => (r.status_errors + r.socket_errors) / r.requests)),
           rpsRounds: rs.map((r) => r.rps), p99Rounds: rs.map((r) => r.p99_us) };
}
const allSystems = ['direct', 'nginx', 'idem-memory', 'idem-rocksdb', 'idem-redis', 'idem-postgres',
                    'seeds-express', 'node-idempotency', 'express-idempotency'];
const peers = ['seeds-express', 'node-idempotency', 'express-idempotency'];
const workloads = ['unique', 'replay', 'mix', 'nokey'];
const conns = Number(meta.http_connections || 32);
const main = (system, workload) => cell('systems', system, workload, conns, 100);
const systems = allSystems.filter((s) => rounds.some((r) => r.group === 'systems' && r.system === s));
const bestPeer = (workload) => {
  let best = null;
  for (const p of peers) {
    const c = main(p, workload);
    if (c.n && (!best || c.rps > best.rps)) best = { name: p, ...c };
  }
  return best;
};

const describe = {
  direct: 'the upstream alone, no proxy',
  nginx: 'nginx, plain keep-alive reverse proxy',
  'idem-memory': '`idem serve --store memory:`',
  'idem-rocksdb': '`idem serve --store rocksdb:DIR` (every Complete fsynced)',
  'idem-redis': '`idem serve --store redis://…`',
  'idem-postgres': '`idem serve --store postgresql://…`',
  'seeds-express': "the seeds' Express + ioredis middleware",
  'node-idempotency': '`@node-idempotency/core` + Redis adapter, Node http server',
  'express-idempotency': '`express-idempotency` (Redis data adapter)',
};

// ---- gnuplot
const charts = [];
function plot(name, data, script) {
  const dat = path.join(runDir, `${name}.dat`);
  fs.writeFileSync(dat, data);
  const png = path.join(imgDir, `${name}.png`);
  const gp = `set terminal pngcairo size 960,540 font "sans,10"\nset output '${png}'\n` +
             `set grid ytics\nset key top left\n${script.replace(/DATA/g, `'${dat}'`)}\n`;
  fs.writeFileSync(path.join(runDir, `${name}.gp`), gp);
  try {
    execFileSync('gnuplot', [path.join(runDir, `${name}.gp`)], { stdio: ['ignore', 'ignore', 'pipe'] });
    charts.push(name);
    return `![${name}](img/${name}.png)\n\n`;
  } catch (err) {
    return `(chart ${name} failed: ${String(err.stderr || err).trim().split('\n')[0]})\n\n`;
  }
}

// ---- the report
const out = [];
const say = (...lines) => out.push(...lines);
say('# Benchmarks', '',
    `Generated by \`${meta.command || 'make bench'}\` (\`scripts/bench\`) on ${meta.date || 'n/a'};` +
    ` the whole run took ${meta.elapsed || 'n/a'}. Every number on this page comes from that one run;` +
    ' nothing is copied from elsewhere. Re-run the command to reproduce it.', '',
    `- Machine: ${meta.machine || 'n/a'}.`,
    `- Load average before the run: ${meta.load_before || 'n/a'}` +
    (Number(String(meta.load_before || '0').split(' ')[0]) > 1 ?
      ' (the machine was not idle: absolute numbers are lower bounds).' : '.'),
    `- Mode: ${meta.mode || 'full'}; ${meta.http_rounds} round(s) of ${meta.http_duration} s per cell` +
    ` in the main table and ${meta.http_sweep_duration} s in the sweeps, after a ${meta.http_warmup} s warm-up,` +
    ' systems interleaved within each round.',
    `- Versions: nginx ${meta.nginx_version}, wrk ${meta.wrk_version}, Node.js ${meta.node_version},` +
    ` Redis ${meta.redis_version}, PostgreSQL ${meta.postgres_version}; peers pinned by bench/peers/package-lock.json.`,
    '');

// Goals first: what the issues ask, met or not, from this run.
const goals = [];
const goal = (issue, text, value, target, op, unit, why) => {
  const met = Number.isFinite(value) && (op === '>=' ? value >= target : value <= target);
  let by = '';
  if (!met && Number.isFinite(value)) {
    by = op === '>=' ? ` (short by ${fmt((1 - value / target) * 100, 0)}%)` : ` (over by ${fmt(value - target, 2)} ${unit})`;
  }
  goals.push(`| ${issue} | ${text} | ${op === '>=' ? '≥' : '≤'} ${target}${unit === '×' ? '×' : ' ' + unit} |` +
             ` ${fmt(value, 2)}${unit === '×' ? '×' : ' ' + unit} | ${Number.isFinite(value) ? (met ? 'met' : 'not met' + by) : 'not measured'} |` +
             ` ${why || ''} |`);
};
const c = (s, w) => main(s, w);
// A Google Benchmark result of this run, for the goals' context.
function micro(program, name) {
  try {
    const json = JSON.parse(read(`micro-${program}.json`));
    return (json.benchmarks || []).find((b) => b.name === name) || {};
  } catch { return {}; }
}
const usOf = (b) => (b.real_time === undefined ? NaN : b.time_unit === 'ns' ? b.real_time / 1000 : b.real_time);
const engineNew = micro('engine', 'BM_NewKeyBeginFinish/real_time/threads:1');
const engineReplay = micro('engine', 'BM_ReplayCompletedKey/real_time/threads:1');
const fp100 = micro('codec', 'BM_FingerprintBody/100');
const rocksNew = micro('rocksdb', 'BM_BeginComplete/backend:1/real_time/threads:8');
const memNew = micro('rocksdb', 'BM_BeginComplete/backend:0/real_time/threads:8');
const rocksGet = micro('rocksdb', 'BM_ReplayBegin/backend:1/real_time/threads:1');
const memGet = micro('rocksdb', 'BM_ReplayBegin/backend:0/real_time/threads:1');
// p99 added over direct: the difference within each round (the two ran
// seconds apart, under the same background load), then the median of those.
function addedP99(system) {
  const per = (sys) => new Map(rounds.filter((r) => r.group === 'systems' && r.system === sys &&
    r.workload === 'unique' && r.connections === conns && r.body === 100).map((r) => [r.round, r.p99_us]));
  const a = per(system);
  const d = per('direct');
  const diffs = [...a.keys()].filter((k) => d.has(k)).map((k) => (a.get(k) - d.get(k)) / 1000);
  return { median: median(diffs), diffs };
}
const p99Added = addedP99('idem-memory');
const nginxAdded = addedP99('nginx');
const directP99s = c('direct', 'unique').p99Rounds.map((v) => fmt(v / 1000, 2)).join(', ');
const bpU = bestPeer('unique');
const bpR = bestPeer('replay');
goal('3 gateway', 'idem-memory unique keys vs nginx, req/s', ratio(c('idem-memory', 'unique').rps, c('nginx', 'unique').rps), 0.9, '>=', '×',
     `work idem adds per new key: engine Begin→Finish ${fmt(usOf(engineNew), 1)} µs and a body fingerprint ${fmt(usOf(fp100), 1)} µs (microbenchmarks below); the direct upstream alone does ${int(c('direct', 'unique').rps)} req/s`);
goal('3 gateway', 'idem-memory replays vs nginx, req/s', ratio(c('idem-memory', 'replay').rps, c('nginx', 'replay').rps), 1.5, '>=', '×',
     `an engine replay decision costs ${fmt(usOf(engineReplay), 2)} µs; nginx still goes to the upstream (direct upstream: ${int(c('direct', 'replay').rps)} req/s)`);
goal('3 gateway', `p99 added over the direct upstream, unique keys, ${conns} connections (median over rounds of the per-round difference)`,
     p99Added.median, 1, '<=', 'ms',
     `per round: ${p99Added.diffs.map((v) => fmt(v, 2)).join(', ')} ms; nginx adds ${fmt(nginxAdded.median, 2)} ms;` +
     ` the direct upstream's own p99 per round: ${directP99s} ms${p99Added.median < 0 ? ' (a negative difference means the run\'s scheduling noise is larger than what idem adds)' : ''}`);
goal('4 RocksDB', 'idem-rocksdb new keys vs idem-memory', ratio(c('idem-rocksdb', 'unique').rps, c('idem-memory', 'unique').rps), 0.8, '>=', '×',
     `every Complete waits for a WAL fsync (grouped); store level, 8 threads: RocksDB ${int(rocksNew.items_per_second)} vs memory ${int(memNew.items_per_second)} Begin→Complete/s, ${fmt(rocksNew['writes/sync'], 1)} writes per sync; on the development machine even a store that does nothing but fsync results (bench/experiments/durability-floor) reached 0.64×, so no store that syncs can meet 0.8× there (docs/stores.md, "The durability floor")`);
goal('4 RocksDB', 'idem-rocksdb replays vs idem-memory', ratio(c('idem-rocksdb', 'replay').rps, c('idem-memory', 'replay').rps), 0.95, '>=', '×',
     `store level replay Begin, 1 thread: RocksDB ${int(rocksGet.items_per_second)}/s vs memory ${int(memGet.items_per_second)}/s`);
goal('5 Redis', `idem-redis unique keys vs the best Node peer (${bpU ? bpU.name : 'n/a'})`, ratio(c('idem-redis', 'unique').rps, bpU && bpU.rps), 2, '>=', '×',
     'per new key the peers make 2 (node-idempotency: SET NX, SET) or 3 (seeds: GET, SET NX, SET) Redis round trips from one event loop');
goal('5 Redis', `idem-redis replays vs the best Node peer (${bpR ? bpR.name : 'n/a'})`, ratio(c('idem-redis', 'replay').rps, bpR && bpR.rps), 3, '>=', '×',
     `a replay costs idem-redis no Redis round trip once the gateway's local cache of completed records holds the key (the first replay there reads it with one), node-idempotency two (SET NX, GET), the seeds one (GET); idem-redis replays at ${fmt(ratio(c('idem-redis', 'replay').rps, c('idem-memory', 'replay').rps), 2)}× idem-memory's rate`);
goal('5 Redis', 'idem-redis p99 minus the best peer\'s p99, unique keys', (c('idem-redis', 'unique').p99 - (bpU ? bpU.p99 : NaN)) / 1000, 0, '<=', 'ms', 'negative: idem is lower');
goal('5 Redis', 'idem-redis p99 minus the best peer\'s p99, replays', (c('idem-redis', 'replay').p99 - (bpR ? bpR.p99 : NaN)) / 1000, 0, '<=', 'ms', 'negative: idem is lower');
goal('6 PostgreSQL', 'idem-postgres new keys vs idem-redis', ratio(c('idem-postgres', 'unique').rps, c('idem-redis', 'unique').rps), 0.5, '>=', '×',
     'PostgreSQL runs with its durable defaults (fsync, synchronous_commit: each Begin and Complete waits for a WAL flush); the Redis here has no persistence');
goal('6 PostgreSQL', 'idem-postgres replays vs idem-redis', ratio(c('idem-postgres', 'replay').rps, c('idem-redis', 'replay').rps), 0.8, '>=', '×', '');
say('## Goals', '',
    `From the main table below (${conns} connections, 100 B bodies). Ratios are of median throughputs,`,
    'latencies are medians over rounds of each round\'s p99.', '',
    ...(meta.mode === 'quick' ? ['**Quick mode**: one short round per cell on whatever else the machine was doing;',
      'these verdicts are indicative only. `make bench` gives the numbers to quote.', ''] : []),
    '| issue | goal | target | measured | verdict | context (from this run) |', '| --- | --- | ---: | ---: | --- | --- |', ...goals, '');

say('## How the systems are run', '',
    'Everything runs on this machine on 127.0.0.1 and is stopped at the end (also on failure).',
    'Every system sits in front of the **same** `idem-demo-upstream` process (POST /payments parses the',
    'JSON body and answers 201 with a small JSON payment). The Node.js peers **forward to that upstream**',
    'over keep-alive connections, exactly as nginx and idem do, instead of re-implementing the handler:',
    'the upstream work is then byte-for-byte identical behind every system and each system\'s cost is what',
    'it adds to one hop. *upstream executions per response* is what the upstream counted during the',
    'round divided by the responses wrk got (requests still in flight when wrk stops make it a little over 1):',
    'about 0 for a replay that never reached the upstream, about 0.8 for the mix.', '',
    '| system | what | threads |', '| --- | --- | --- |',
    ...systems.map((s) => `| ${s} | ${describe[s]} | ${{
      direct: '1 io thread', nginx: '1 worker process',
      'idem-memory': '`threads = 1`', 'idem-rocksdb': '`threads = 1` (+ RocksDB commit, sync and callback threads)',
      'idem-redis': '`threads = 1` (the Redis connections run on that io thread)',
      'idem-postgres': '`threads = 1` (the PostgreSQL connections run on that io thread; 8 pooled connections, each a PostgreSQL server process)',
    }[s] || '1 Node.js process (one event loop)'} |`),
    '',
    `Fairness: one io thread / worker / event loop per proxy and for the upstream; wrk runs 1 thread with ${conns}`,
    'connections (1 and 256 in the connection sweep); nothing is pinned, so wrk, the upstream and the system',
    'under test share the cores. Redis (one server, no persistence, flushed before every workload) is shared by',
    'idem-redis and the three peers. PostgreSQL runs with its defaults (fsync and synchronous_commit on).',
    'The peers\' versions are pinned in bench/peers/package-lock.json and installed with `npm ci`.',
    'express-idempotency ships only an in-memory adapter (an array scanned on every request) and a MongoDB one,',
    'so it runs with a 20-line Redis data adapter implementing its `IIdempotencyDataAdapter`',
    '(bench/peers/express_idempotency.js); its default intent check deep-compares the parsed body on every replay.',
    '@node-idempotency/core runs with its own Redis adapter, without framework (its documented core API:',
    '`onRequest` / `onResponse`). The seeds\' middleware follows the design in the issue (GET, SET NX PX, handler,',
    'SET with TTL; no fingerprint check).', '',
    'Workloads (bench/gateway/load.lua): *unique* — every request has a new key; *replay* —',
    `${meta.http_replay_keys} keys executed once before the measurement, then repeated; *mix* — 80% new keys, 15% retries of`,
    'a key sent 64–1023 requests earlier by the same wrk thread, 5% a duplicate of the request just sent (still in',
    'flight, so idem and the peers answer 409: those are the non-2xx of the mix rows); *nokey* — no Idempotency-Key',
    '(pass-through). Bodies are JSON payments padded to 100 B, 10 KiB or 512 KiB.', '');

// Main table, one per workload.
say(`## Every system, ${conns} connections, 100 B bodies`, '');
say(plot('throughput-by-system',
  ['system ' + workloads.join(' '),
   ...systems.map((s) => `${s} ${workloads.map((w) => fmt(main(s, w).rps)).join(' ')}`)].join('\n') + '\n',
  `set title 'Throughput by system and workload (${conns} connections, 100 B, median of rounds)'
set ylabel 'requests/s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30 nomirror
set key top right
set yrange [0:*]
plot for [i=2:5] DATA using i:xtic(1) title columnheader(i)`));
for (const w of workloads) {
  const bp = bestPeer(w);
  const nginx = main('nginx', w);
  say(`### ${w}`, '',
      '| system | req/s | p50 ms | p99 ms | p99.9 ms | × nginx | × best peer | non-2xx or failed | upstream executions per response | rounds (req/s) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const s of systems) {
    const x = main(s, w);
    if (!x.n) continue;
    say(`| ${s} | ${int(x.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${ms(x.p999)} | ${fmt(ratio(x.rps, nginx.rps), 2)} |` +
        ` ${fmt(ratio(x.rps, bp && bp.rps), 2)} | ${fmt(x.errorShare * 100, 1)}% | ${fmt(x.executions, 2)} | ${x.rpsRounds.join(', ')} |`);
  }
  say('', `Best peer for ${w}: ${bp ? bp.name : 'n/a'}.`, '');
}

// The four stores side by side (issues 4, 5, 6 compare them).
say('### The stores through the gateway', '',
    'The same idem serve build with each store, from the tables above (medians of rounds). The RocksDB,',
    'Redis and PostgreSQL stores keep completed records in an in-process cache (docs/stores.md), so replays',
    `of the run's ${meta.http_replay_keys} hot keys do not reach the database.`, '',
    '| store | unique req/s | unique p50 ms | unique p99 ms | unique p99.9 ms | replay req/s | replay p99 ms | replay p99.9 ms | unique × memory | replay × memory |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const s of ['idem-memory', 'idem-rocksdb', 'idem-redis', 'idem-postgres']) {
  const u = main(s, 'unique');
  const r = main(s, 'replay');
  if (!u.n) continue;
  say(`| ${s.replace('idem-', '')} | ${int(u.rps)} | ${ms(u.p50)} | ${ms(u.p99)} | ${ms(u.p999)} | ${int(r.rps)} | ${ms(r.p99)} | ${ms(r.p999)} |` +
      ` ${fmt(ratio(u.rps, main('idem-memory', 'unique').rps), 2)} | ${fmt(ratio(r.rps, main('idem-memory', 'replay').rps), 2)} |`);
}
say('');

// Connection sweep.
const sweepSystems = ['nginx', 'idem-memory', meta.http_best_peer].filter(Boolean);
const sweepWorkloads = [...new Set(rounds.filter((r) => r.group === 'connections').map((r) => r.workload))];
const connCell = (s, w, n) => (n === conns ? main(s, w) : cell('connections', s, w, n, 100));
if (sweepWorkloads.length) {
  say('## Connections: 1, 32, 256', '',
      `nginx, idem-memory and the best peer on unique keys (${meta.http_best_peer}); 100 B bodies; the 32-connection`,
      'points are the main table\'s.', '',
      '| workload | system | connections | req/s | p50 ms | p99 ms | p99.9 ms | × nginx |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const w of sweepWorkloads) for (const s of sweepSystems) for (const n of [1, conns, 256]) {
    const x = connCell(s, w, n);
    if (!x.n) continue;
    say(`| ${w} | ${s} | ${n} | ${int(x.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${ms(x.p999)} | ${fmt(ratio(x.rps, connCell('nginx', w, n).rps), 2)} |`);
  }
  say('');
  const cols = sweepWorkloads.flatMap((w) => sweepSystems.map((s) => [w, s]));
  say(plot('throughput-vs-connections',
    ['connections ' + cols.map(([w, s]) => `${s}-${w}`).join(' '),
     ...[1, conns, 256].map((n) => `${n} ${cols.map(([w, s]) => fmt(connCell(s, w, n).rps)).join(' ')}`)].join('\n') + '\n',
    `set title 'Throughput against connections (100 B bodies)'
set xlabel 'connections'
set ylabel 'requests/s'
set logscale x 2
set yrange [0:*]
set key outside right
plot for [i=2:${cols.length + 1}] DATA using 1:i with linespoints lw 2 title columnheader(i)`));
}

// Body sizes.
const bodyWorkloads = [...new Set(rounds.filter((r) => r.group === 'body').map((r) => r.workload))];
const bodyCell = (s, w, b) => (b === 100 ? main(s, w) : cell('body', s, w, conns, b));
if (bodyWorkloads.length) {
  say('## Request body sizes: 100 B, 10 KiB, 512 KiB', '',
      `${conns} connections; the 100 B points are the main table's. The upstream parses the whole JSON body; idem`,
      'fingerprints it (SHA-256 of the raw bytes, the default); the response stays small.', '',
      '| workload | system | body | req/s | MiB/s in | p50 ms | p99 ms | p99.9 ms | × nginx |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const w of bodyWorkloads) for (const s of sweepSystems) for (const b of [100, 10240, 524288]) {
    const x = bodyCell(s, w, b);
    if (!x.n) continue;
    say(`| ${w} | ${s} | ${b} B | ${int(x.rps)} | ${fmt(x.rps * b / 1048576, 1)} | ${ms(x.p50)} | ${ms(x.p99)} | ${ms(x.p999)} | ${fmt(ratio(x.rps, bodyCell('nginx', w, b).rps), 2)} |`);
  }
  say('');
  const cols = bodyWorkloads.flatMap((w) => sweepSystems.map((s) => [w, s]));
  say(plot('throughput-vs-body-size',
    ['body ' + cols.map(([w, s]) => `${s}-${w}`).join(' '),
     ...[100, 10240, 524288].map((b) => `${b} ${cols.map(([w, s]) => fmt(bodyCell(s, w, b).rps)).join(' ')}`)].join('\n') + '\n',
    `set title 'Throughput against request body size (${conns} connections)'
set xlabel 'request body, bytes'
set ylabel 'requests/s'
set logscale xy
set key outside right
plot for [i=2:${cols.length + 1}] DATA using 1:i with linespoints lw 2 title columnheader(i)`));
}

// io threads.
const threadRows = rounds.filter((r) => r.group === 'threads');
if (threadRows.length) {
  const ns = [...new Set(threadRows.map((r) => r.threads))].sort((a, b) => a - b);
  const tw = [...new Set(threadRows.map((r) => r.workload))];
  const tcell = (kind, w, n) => cell('threads', `${kind}${n}`, w, conns, 100);
  say('## Throughput against io threads', '',
      `idem-memory with \`threads = N\` and nginx with N workers, both in front of an upstream with one io thread per`,
      `core (${meta.cores || 'n/a'} here), ${conns} connections, wrk 1 thread. On a machine with few cores the client, the upstream and the`,
      'proxy compete for the same cores, so more threads than cores cannot help.', '',
      '| threads | ' + tw.map((w) => `idem-memory ${w} req/s | idem p99 ms`).join(' | ') + ' | ' + tw.map((w) => `nginx ${w} req/s`).join(' | ') + ' |',
      '| ---: | ' + tw.map(() => '---: | ---:').join(' | ') + ' | ' + tw.map(() => '---:').join(' | ') + ' |');
  for (const n of ns) {
    say(`| ${n} | ` + tw.map((w) => { const x = tcell('idem-memory-t', w, n); return `${int(x.rps)} | ${ms(x.p99)}`; }).join(' | ') +
        ' | ' + tw.map((w) => int(tcell('nginx-w', w, n).rps)).join(' | ') + ' |');
  }
  say('');
  const cols = tw.flatMap((w) => [['idem-memory-t', w], ['nginx-w', w]]);
  say(plot('throughput-vs-threads',
    ['threads ' + cols.map(([k, w]) => `${k.replace(/-[tw]$/, '')}-${w}`).join(' '),
     ...ns.map((n) => `${n} ${cols.map(([k, w]) => fmt(tcell(k, w, n).rps)).join(' ')}`)].join('\n') + '\n',
    `set title 'Throughput against io threads (nginx: worker processes)'
set xlabel 'io threads'
set ylabel 'requests/s'
set xtics (${ns.join(', ')})
set yrange [0:*]
set key outside right
plot for [i=2:${cols.length + 1}] DATA using 1:i with linespoints lw 2 title columnheader(i)`));
}

// Store size.
const fills = {};
for (const store of ['memory', 'rocksdb', 'redis']) {
  const rows = readTsv(`fill-${store}.tsv`);
  if (rows.length > 1) fills[store] = rows;
}
if (Object.keys(fills).length) {
  const sizeOf = (store, row, base) => ({
    memory: row.rss_bytes - base.rss_bytes,
    rocksdb: row.disk_bytes,
    redis: row.redis_used_memory - base.redis_used_memory,
  }[store]);
  const measureWhat = { memory: 'resident memory of the process, minus the empty store',
                        rocksdb: 'size of the RocksDB directory (SST files and write-ahead log)',
                        redis: "Redis's used_memory, minus the empty server" };
  say('## Store size and speed as the store grows', '',
      '`idem_store_fill` (bench/store_fill.cc) fills each store through its `Store` interface with completed keys',
      'shaped like the gateway\'s records for POST /payments (scope key with a UUID-sized client key, 32-byte',
      'fingerprint, 201 with a ~90-byte JSON body), 512 calls in flight, then at each checkpoint measures for',
      `${meta.scaling_measure_ms} ms: *replay* — Begin on uniformly random completed keys; *new* — Begin + Complete on new keys.`,
      'RocksDB runs with its defaults (Complete fsynced, grouped); its directory holds the write-ahead log until',
      'the memtable is flushed and compacted into compressed SST files, so its bytes per key drop as it grows.',
      'These are store-level numbers (no HTTP).',
      `Checkpoints: memory ${meta.scaling_memory_points}, RocksDB ${meta.scaling_rocksdb_points}, Redis ${meta.scaling_redis_points}.`, '',
      '| store | keys | size | bytes per key | what is measured | fill keys/s | replay Begin/s | new Begin+Complete/s |',
      '| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |');
  for (const [store, rows] of Object.entries(fills)) {
    const base = rows[0];
    for (const row of rows.slice(1)) {
      const size = sizeOf(store, row, base);
      say(`| ${store} | ${int(row.keys)} | ${fmt(size / 1048576, 1)} MiB | ${int(size / row.keys)} | ${measureWhat[store]} |` +
          ` ${int(row.fill_per_s)} | ${int(row.replay_per_s)} | ${int(row.new_per_s)} |`);
    }
  }
  say('');
  const stores = Object.keys(fills);
  const allKeys = [...new Set(stores.flatMap((s) => fills[s].slice(1).map((r) => r.keys)))].sort((a, b) => a - b);
  const at = (s, k) => fills[s].find((r) => r.keys === k);
  const series = (f) => ['keys ' + stores.join(' '),
    ...allKeys.map((k) => `${k} ${stores.map((s) => { const r = at(s, k); return r ? f(s, r) : '?'; }).join(' ')}`)].join('\n') + '\n';
  say(plot('store-bytes-per-key', series((s, r) => fmt(sizeOf(s, r, fills[s][0]) / r.keys)),
    `set title 'Bytes per completed key'
set key outside right
set xlabel 'completed keys'
set ylabel 'bytes per key'
set logscale x
set yrange [0:*]
set datafile missing '?'
plot for [i=2:${stores.length + 1}] DATA using 1:i with linespoints lw 2 title columnheader(i)`));
  say(plot('store-size', series((s, r) => fmt(sizeOf(s, r, fills[s][0]) / 1048576, 1)),
    `set title 'Store size against completed keys'
set key outside right
set xlabel 'completed keys'
set ylabel 'MiB'
set logscale xy
set datafile missing '?'
plot for [i=2:${stores.length + 1}] DATA using 1:i with linespoints lw 2 title columnheader(i)`));
  const tcols = stores.flatMap((s) => [[s, 'replay'], [s, 'new']]);
  say(plot('throughput-vs-store-size',
    ['keys ' + tcols.map(([s, k]) => `${s}-${k}`).join(' '),
     ...allKeys.map((k) => `${k} ${tcols.map(([s, kind]) => { const r = at(s, k); return r ? fmt(r[`${kind}_per_s`]) : '?'; }).join(' ')}`)].join('\n') + '\n',
    `set title 'Store throughput as the store grows (store level, 512 in flight)'
set xlabel 'completed keys in the store'
set ylabel 'operations/s'
set logscale xy
set datafile missing '?'
set key outside right
plot for [i=2:${tcols.length + 1}] DATA using 1:i with linespoints lw 2 title columnheader(i)`));
}

// Microbenchmarks.
say('## Microbenchmarks (Google Benchmark)', '',
    `\`build/bin/idem_*_bench --benchmark_min_time=${meta.mode === 'quick' ? '0.05' : '0.5'}` +
    `${meta.mode === 'quick' ? " --benchmark_filter='-threads:(16|32)$'" : ''}\` (bench/micro.sh); ops/s is Google Benchmark's`,
    'items_per_second (per wall-clock second for the `real_time` benchmarks). No network except to the',
    'throw-away Redis and PostgreSQL servers the store programs start on 127.0.0.1.', '');
const programs = { engine: 'engine + memory store (asynchronous interface)', codec: 'fingerprints and the record codec',
                   rocksdb: 'RocksDB store next to the memory store (backend:0 memory, backend:1 RocksDB)',
                   redis: 'Redis store', postgres: 'PostgreSQL store' };
for (const [program, title] of Object.entries(programs)) {
  say(`### ${title}`, '');
  if (exists(`micro-${program}.failed`) || !exists(`micro-${program}.json`)) {
    say(`\`idem_${program}_bench\` failed in this run; its log was kept in the run directory.`, '');
    if (!exists(`micro-${program}.json`)) continue;
  }
  let json;
  try { json = JSON.parse(read(`micro-${program}.json`)); } catch { say('(no parsable output)', ''); continue; }
  say('| benchmark | wall time per iteration | ops/s | notes |', '| --- | ---: | ---: | --- |');
  for (const b of json.benchmarks || []) {
    const extra = Object.entries(b).filter(([k]) => !['name', 'family_index', 'per_family_instance_index',
      'run_name', 'run_type', 'repetitions', 'repetition_index', 'threads', 'iterations', 'real_time', 'cpu_time',
      'time_unit', 'items_per_second', 'bytes_per_second', 'label', 'error_occurred', 'error_message'].includes(k))
      .map(([k, v]) => `${k}=${fmt(v, 1)}`);
    if (b.label) extra.unshift(b.label);
    if (b.error_occurred) extra.unshift(`error: ${b.error_message}`);
    if (b.bytes_per_second) extra.push(`${fmt(b.bytes_per_second / 1048576, 0)} MiB/s`);
    const t = b.time_unit === 'ns' ? b.real_time / 1000 : b.time_unit === 'us' ? b.real_time : b.real_time * 1000;
    say(`| ${b.name} | ${fmt(t, 2)} µs | ${int(b.items_per_second)} | ${extra.join(', ')} |`);
  }
  say('');
}

say('## Not measured here', '',
    ...(meta.notes ? [meta.notes, ''] : []),
    ...['rocksdb', 'redis', 'memory'].filter((st) => fills[st] && fills[st][fills[st].length - 1].keys < 10e6).map((st) => {
      const last = fills[st][fills[st].length - 1];
      return `- ${st} beyond ${int(last.keys)} keys: ` +
        (st === 'rocksdb' ? 'the quick mode stops early.'
                          : 'the machine had less than 14 GiB of memory available (or the quick mode stopped early).');
    }),
    '- Growth through the gateway: the store-size figures are store-level (no HTTP); the HTTP tables run on stores',
    '  that hold only the keys of the run.',
    '- The sweeps (connections, body sizes, io threads) cover nginx, idem-memory and the best peer, not every system.',
    '');
fs.writeFileSync(path.join(docsDir, 'benchmarks.md'), out.join('\n'));
console.error(`[bench] wrote ${path.join(docsDir, 'benchmarks.md')} and ${charts.length} charts`);
