// SPDX-License-Identifier: Apache-2.0
// Interop (a): the real AWS SDK for JavaScript KMS client talks to the fake
// cloud (fake_cloud_server, whose AWS endpoint checks every request with our
// SigV4 verifier). Honest Decrypt / Sign / Verify / GetPublicKey calls must
// succeed; requests tampered after signing (body, a signed header, the date,
// the query) must be refused with InvalidSignatureException.
// Usage: node kms_client_interop.js <path to fake_cloud_server>
'use strict';
const { spawn } = require('child_process');
const crypto = require('crypto');
const readline = require('readline');
const {
  KMSClient, DecryptCommand, SignCommand, VerifyCommand, GetPublicKeyCommand,
} = require('@aws-sdk/client-kms');
const { NodeHttpHandler } = require('@smithy/node-http-handler');

const AKID = 'AKIDFAKEEXAMPLE';
const SECRET = 'fake/secret+KEY0123456789abcdefghijklmn';
const BLOB = Buffer.from('fake-ciphertext-blob-0001');
const PASSWORD = 'correct horse battery staple';
const TOKEN = 'FwoGZXIvYXdzEInterop//token+=';

let passed = 0;
let failed = 0;
function check(cond, what) {
  if (cond) { passed++; console.log(`ok   ${what}`); } else { failed++; console.log(`FAIL ${what}`); }
}

function startServer(bin, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const rl = readline.createInterface({ input: child.stdout });
    const info = { child, failures: null };
    rl.on('line', (line) => {
      const [k, v] = line.split(' ');
      if (k === 'PORT') info.port = Number(v);
      if (k === 'PUBKEY') { info.pubkey = Buffer.from(v, 'base64'); resolve(info); }
      if (k === 'FAILURES') info.failures = Number(v);
    });
    child.on('error', reject);
    info.stop = () => new Promise((res) => { child.on('exit', () => res(info.failures)); child.stdin.end(); });
  });
}

// Changes the request after the SDK signed it (the handler is the last step).
class TamperHandler {
  constructor(mode) { this.mode = mode; this.inner = new NodeHttpHandler(); this.metadata = { handlerProtocol: 'http/1.1' }; }
  handle(req, opts) {
    const h = req.headers;
    switch (this.mode) {
      case 'body': req.body = Buffer.from(req.body).toString().replace('alias/zapdb', 'alias/zapdc'); break;
      case 'target': h['x-amz-target'] = 'TrentService.Encrypt'; break;
      case 'date': h['x-amz-date'] = h['x-amz-date'].replace(/\d(?=Z$)/, (d) => String((Number(d) + 1) % 10)); break;
      case 'query': req.query = { ...(req.query || {}), tamper: '1' }; break;
      default: break;
    }
    return this.inner.handle(req, opts);
  }
  updateHttpClientConfig() {}
  httpHandlerConfigs() { return {}; }
  destroy() { this.inner.destroy(); }
}

function client(port, mode, token) {
  return new KMSClient({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: token },
    maxAttempts: 1,
    requestHandler: new TamperHandler(mode),
  });
}

(async () => {
  const bin = process.argv[2];
  const srv = await startServer(bin, []);
  const kms = client(srv.port, 'none');
  const dec = await kms.send(new DecryptCommand({ CiphertextBlob: BLOB, KeyId: 'alias/zapdb' }));
  check(Buffer.from(dec.Plaintext).toString() === PASSWORD, 'Decrypt through the SDK returns the password');

  const msg = Buffer.from('message signed through the SDK');
  const digest = crypto.createHash('sha256').update(msg).digest();
  const signed = await kms.send(new SignCommand({
    KeyId: 'alias/zapdb', Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256',
  }));
  const pk = await kms.send(new GetPublicKeyCommand({ KeyId: 'alias/zapdb' }));
  check(Buffer.from(pk.PublicKey).equals(srv.pubkey), 'GetPublicKey returns the fake key');
  const key = crypto.createPublicKey({ key: Buffer.from(pk.PublicKey), format: 'der', type: 'spki' });
  check(crypto.verify('sha256', msg, key, Buffer.from(signed.Signature)), 'Sign returns a DER signature Node verifies');
  const ver = await kms.send(new VerifyCommand({
    KeyId: 'alias/zapdb', Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256', Signature: signed.Signature,
  }));
  check(ver.SignatureValid === true, 'Verify through the SDK is valid');

  const tampers = ['body', 'target', 'date', 'query'];
  for (const mode of tampers) {
    let name = 'no error';
    try {
      await client(srv.port, mode).send(new DecryptCommand({ CiphertextBlob: BLOB, KeyId: 'alias/zapdb' }));
    } catch (e) { name = e.name; }
    check(name === 'InvalidSignatureException', `tampered ${mode} rejected by our verifier (${name})`);
  }
  const failures = await srv.stop();
  check(failures === tampers.length, `fake saw exactly ${tampers.length} verification failures (${failures})`);

  // Session tokens: the fake demands this token, signed.
  const srv2 = await startServer(bin, [TOKEN]);
  const dec2 = await client(srv2.port, 'none', TOKEN).send(new DecryptCommand({ CiphertextBlob: BLOB }));
  check(Buffer.from(dec2.Plaintext).toString() === PASSWORD, 'Decrypt with a session token');
  check(await srv2.stop() === 0, 'no failures with a session token');

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
