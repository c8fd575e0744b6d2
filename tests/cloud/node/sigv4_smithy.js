// SPDX-License-Identifier: Apache-2.0
// Interop (b): every request our SigV4 signer signed (printed by the
// sigv4_cases helper) is signed again by @smithy/signature-v4, the signer
// of the AWS SDK for JavaScript, from the same inputs; the Authorization
// headers must be identical byte for byte.
// Usage: node sigv4_smithy.js <path to sigv4_cases>
'use strict';
const { execFileSync } = require('child_process');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

function parseQuery(q) {
  const out = {};
  if (!q) return out;
  for (const part of q.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}

async function smithySign(c, secret) {
  const signer = new SignatureV4({
    credentials: { accessKeyId: c.akid, secretAccessKey: secret, sessionToken: c.token },
    region: c.region,
    service: c.service,
    sha256: Sha256,
    applyChecksum: c.content_sha,
    uriEscapePath: true,
  });
  const host = c.headers.host;
  const signed = await signer.sign({
    method: c.method,
    protocol: 'https:',
    hostname: host.replace(/:\d+$/, ''),
    path: c.path,
    query: parseQuery(c.query),
    headers: { ...c.headers },
    body: c.body,
  }, { signingDate: new Date(c.time * 1000) });
  return signed.headers;
}

(async () => {
  const cases = JSON.parse(execFileSync(process.argv[2], { encoding: 'utf8' }));
  let failed = 0;
  if (cases.length < 4) {
    console.error('too few cases');
    process.exit(1);
  }
  for (const [i, c] of cases.entries()) {
    const h = await smithySign(c, c.secret);
    const same = h.authorization === c.authorization && h['x-amz-date'] === c.amz_date;
    console.log(`${same ? 'ok  ' : 'FAIL'} case ${i} ${c.method} ${c.path}`);
    if (!same) {
      console.log(`  ours:   ${c.authorization}\n  smithy: ${h.authorization}`);
      failed++;
    }
    // The comparison is not vacuous: another secret gives another header.
    const other = await smithySign(c, c.secret + 'x');
    if (other.authorization === c.authorization) {
      console.log(`FAIL case ${i}: signature does not depend on the secret`);
      failed++;
    }
  }
  console.log(`${cases.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
