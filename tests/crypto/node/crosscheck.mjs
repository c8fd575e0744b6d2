// SPDX-License-Identifier: Apache-2.0
// Cross-check of kms_crypto's ML-DSA (through tests/crypto/mldsa_tool.c)
// against the independent @noble/post-quantum implementation, for
// ML-DSA-44/65/87: keys from the same seed byte for byte, noble signs and
// we verify, we sign and noble verifies, deterministic signatures equal,
// with and without context, HashML-DSA and external mu. Usage:
//   node crosscheck.mjs /path/to/mldsa_tool
// Prints "N passed, N failed" and exits non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';

const tool = process.argv[2];
if (!tool) {
  console.error('usage: node crosscheck.mjs MLDSA_TOOL');
  process.exit(2);
}

let passed = 0;
let failed = 0;
function check(cond, what) {
  if (cond) passed++;
  else {
    failed++;
    console.error('FAIL ' + what);
  }
}

const hex = (u) => Buffer.from(u).toString('hex');
const hx = (u) => (u.length ? hex(u) : '-');
const unhex = (h) => new Uint8Array(Buffer.from(h, 'hex'));

// Run a batch of tool commands in one process; returns the answer lines.
function tool_batch(lines) {
  const r = spawnSync(tool, { input: lines.join('\n') + '\n', encoding: 'utf8',
                              maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`mldsa_tool exited ${r.status}: ${r.stderr}`);
  const out = r.stdout.split('\n').filter((l) => l.length);
  if (out.length !== lines.length) throw new Error('mldsa_tool answered ' + out.length +
                                                   ' lines for ' + lines.length);
  return out;
}
const tool1 = (line) => tool_batch([line])[0];

const sets = [[44, ml_dsa44], [65, ml_dsa65], [87, ml_dsa87]];
for (const [p, impl] of sets) {
  const name = `ML-DSA-${p}`;

  // Keys from the same seed (xi) are identical.
  const seeds = [new Uint8Array(32), new Uint8Array(32).fill(0xff), randomBytes(32),
                 randomBytes(32)];
  const ours = tool_batch(seeds.map((s) => `keygen ${p} ${hex(s)}`));
  seeds.forEach((s, i) => {
    const k = impl.keygen(s);
    const [pk, sk] = ours[i].split(' ');
    check(pk === hex(k.publicKey), `${name} keygen public key, seed ${i}`);
    check(sk === hex(k.secretKey), `${name} keygen secret key, seed ${i}`);
  });

  const keys = impl.keygen(seeds[2]);
  const pkh = hex(keys.publicKey);
  const skh = hex(keys.secretKey);
  const ctxs = [new Uint8Array(0), randomBytes(1), randomBytes(255)];
  const msgs = [new Uint8Array(0), randomBytes(1), randomBytes(137), randomBytes(3000)];
  const cmds = [];
  const expect = [];
  for (const ctx of ctxs) {
    for (const msg of msgs) {
      const tag = `${name} ctx ${ctx.length} msg ${msg.length}`;
      // noble signs (hedged), we verify; a changed message or context fails
      const s = impl.sign(msg, keys.secretKey, { context: ctx });
      cmds.push(`verify ${p} ${pkh} ${hx(msg)} ${hx(ctx)} ${hex(s)}`);
      expect.push(['ok', `${tag}: noble signature verified by us`]);
      const other = Uint8Array.from([...msg, 1]);
      cmds.push(`verify ${p} ${pkh} ${hx(other)} ${hx(ctx)} ${hex(s)}`);
      expect.push(['fail', `${tag}: noble signature on another message rejected by us`]);
      const ctx2 = ctx.length ? new Uint8Array(0) : Uint8Array.of(7);
      cmds.push(`verify ${p} ${pkh} ${hx(msg)} ${hx(ctx2)} ${hex(s)}`);
      expect.push(['fail', `${tag}: noble signature with another context rejected by us`]);
      // deterministic signatures are byte-identical
      const d = impl.sign(msg, keys.secretKey, { context: ctx, extraEntropy: false });
      cmds.push(`sign ${p} ${skh} ${hx(msg)} ${hx(ctx)} 1`);
      expect.push([hex(d), `${tag}: deterministic signatures equal`]);
    }
  }
  tool_batch(cmds).forEach((got, i) => check(got === expect[i][0], expect[i][1]));

  // we sign (hedged), noble verifies
  const signCmds = [];
  const signCases = [];
  for (const ctx of ctxs)
    for (const msg of msgs) {
      signCmds.push(`sign ${p} ${skh} ${hx(msg)} ${hx(ctx)} 0`);
      signCases.push([msg, ctx]);
    }
  tool_batch(signCmds).forEach((sigh, i) => {
    const [msg, ctx] = signCases[i];
    const tag = `${name} ctx ${ctx.length} msg ${msg.length}`;
    const sig = unhex(sigh);
    check(impl.verify(sig, msg, keys.publicKey, { context: ctx }),
          `${tag}: our signature verified by noble`);
    const bad = sig.slice();
    bad[bad.length >> 1] ^= 4;
    check(!impl.verify(bad, msg, keys.publicKey, { context: ctx }),
          `${tag}: our tampered signature rejected by noble`);
  });

  // HashML-DSA. noble refuses a pre-hash weaker than the parameter set
  // (SHA-256 for 65 and 87), so SHA-256 is compared for ML-DSA-44 only.
  const hashes = p === 44 ? [['sha256', sha256], ['sha512', sha512]] : [['sha512', sha512]];
  for (const [hname, h] of hashes) {
    const ph = impl.prehash(h);
    const msg = randomBytes(200);
    const ctx = randomBytes(9);
    const tag = `${name} HashML-DSA ${hname}`;
    const ns = ph.sign(msg, keys.secretKey, { context: ctx });
    const nd = ph.sign(msg, keys.secretKey, { context: ctx, extraEntropy: false });
    const [v1, v2, ourDet, ourHedged] = tool_batch([
      `hashverify ${p} ${hname} ${pkh} ${hx(msg)} ${hx(ctx)} ${hex(ns)}`,
      `verify ${p} ${pkh} ${hx(msg)} ${hx(ctx)} ${hex(ns)}`,
      `hashsign ${p} ${hname} ${skh} ${hx(msg)} ${hx(ctx)} 1`,
      `hashsign ${p} ${hname} ${skh} ${hx(msg)} ${hx(ctx)} 0`,
    ]);
    check(v1 === 'ok', `${tag}: noble signature verified by us`);
    check(v2 === 'fail', `${tag}: noble signature is not a pure ML-DSA signature`);
    check(ourDet === hex(nd), `${tag}: deterministic signatures equal`);
    check(ph.verify(unhex(ourHedged), msg, keys.publicKey, { context: ctx }),
          `${tag}: our signature verified by noble`);
    check(!impl.verify(unhex(ourHedged), msg, keys.publicKey, { context: ctx }),
          `${tag}: our signature is not a pure ML-DSA signature for noble`);
  }

  // External mu: our mu, noble's internal signer in externalMu mode.
  {
    const msg = randomBytes(64);
    const ctx = randomBytes(3);
    const tag = `${name} external mu`;
    const mu = unhex(tool1(`mu ${p} ${pkh} ${hx(msg)} ${hx(ctx)}`));
    check(mu.length === 64, `${tag}: mu is 64 bytes`);
    const nd = impl.internal.sign(mu, keys.secretKey, { externalMu: true, extraEntropy: false });
    const [ours1] = tool_batch([`signmu ${p} ${skh} ${hex(mu)} 1`]);
    check(ours1 === hex(nd), `${tag}: deterministic signatures equal`);
    check(impl.verify(unhex(ours1), msg, keys.publicKey, { context: ctx }),
          `${tag}: signature over mu verified by noble as a message signature`);
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
