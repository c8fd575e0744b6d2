// SPDX-License-Identifier: Apache-2.0
// kmsd's AWS KMS-compatible endpoint driven by the real AWS SDK for
// JavaScript (@aws-sdk/client-kms). Environment: AWS_ENDPOINT_URL_KMS,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (from `kms aws-key create`),
// PW_FILE (a ZapDB password, 0600) and CT_FILE (where the base64 Encrypt
// output of that password goes, for the password-hierarchy test).
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const kms = require('@aws-sdk/client-kms');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

const endpoint = process.env.AWS_ENDPOINT_URL_KMS;
const creds = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
};
const client = new kms.KMSClient({
  region: 'us-east-1', endpoint, credentials: creds, maxAttempts: 1,
});

let passed = 0;
let failed = 0;
const state = {};

async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && (e.name + ': ' + e.message)}`);
  }
}

function assert(c, msg) {
  if (!c) throw new Error(msg || 'assertion failed');
}

async function rejects(p, type) {
  try {
    await p;
  } catch (e) {
    assert(e.name === type, `expected ${type}, got ${e.name}: ${e.message}`);
    assert(e.$metadata.httpStatusCode === 400, 'HTTP 400');
    return e;
  }
  throw new Error(`expected ${type}, call succeeded`);
}

const send = (c) => client.send(c);
const enc = new TextEncoder();

async function main() {
  await test('test_aws_create_key_each_spec_ok', async () => {
    for (const [spec, usage] of [
      ['SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT'], ['ECC_NIST_P256', 'SIGN_VERIFY'],
      ['ECC_SECG_P256K1', 'SIGN_VERIFY'], ['ML_DSA_44', 'SIGN_VERIFY'],
      ['ML_DSA_65', 'SIGN_VERIFY'], ['ML_DSA_87', 'SIGN_VERIFY']]) {
      const r = await send(new kms.CreateKeyCommand({
        KeySpec: spec, KeyUsage: usage, Description: `test ${spec}`,
        Tags: [{ TagKey: 'team', TagValue: 'core' }],
      }));
      const m = r.KeyMetadata;
      assert(m.KeySpec === spec && m.KeyUsage === usage, 'spec/usage');
      assert(m.KeyState === 'Enabled' && m.Enabled === true, 'state');
      assert(/^arn:aws:kms:us-east-1:acme:key\//.test(m.Arn), m.Arn);
      assert(m.CreationDate instanceof Date, 'CreationDate is a date');
      state[spec] = m.KeyId;
    }
  });

  await test('test_aws_create_key_unsupported_spec_rejected', async () => {
    await rejects(send(new kms.CreateKeyCommand({ KeySpec: 'RSA_2048' })),
      'UnsupportedOperationException');
    await rejects(send(new kms.CreateKeyCommand({
      KeySpec: 'ECC_NIST_P256', KeyUsage: 'ENCRYPT_DECRYPT' })),
      'ValidationException');
  });

  await test('test_aws_alias_lifecycle_ok', async () => {
    const sym = state.SYMMETRIC_DEFAULT;
    await send(new kms.CreateAliasCommand({ AliasName: 'alias/app', TargetKeyId: sym }));
    await rejects(send(new kms.CreateAliasCommand({ AliasName: 'alias/app', TargetKeyId: sym })),
      'AlreadyExistsException');
    await rejects(send(new kms.CreateAliasCommand({ AliasName: 'alias/aws/x', TargetKeyId: sym })),
      'ValidationException');
    const l = await send(new kms.ListAliasesCommand({}));
    assert(l.Aliases.some((a) => a.AliasName === 'alias/app' && a.TargetKeyId === sym), 'listed');
    const d = await send(new kms.DescribeKeyCommand({ KeyId: 'alias/app' }));
    assert(d.KeyMetadata.KeyId === sym, 'alias resolves');
    const d2 = await send(new kms.DescribeKeyCommand({ KeyId: d.KeyMetadata.Arn }));
    assert(d2.KeyMetadata.KeyId === sym, 'ARN resolves');
    const d3 = await send(new kms.DescribeKeyCommand({
      KeyId: 'arn:aws:kms:us-east-1:acme:alias/app' }));
    assert(d3.KeyMetadata.KeyId === sym, 'alias ARN resolves');
    await rejects(send(new kms.DescribeKeyCommand({
      KeyId: d.KeyMetadata.Arn.replace(':acme:', ':other:') })), 'NotFoundException');
    await send(new kms.CreateAliasCommand({ AliasName: 'alias/tmp', TargetKeyId: sym }));
    await send(new kms.UpdateAliasCommand({ AliasName: 'alias/tmp', TargetKeyId: state.ECC_NIST_P256 }));
    const d4 = await send(new kms.DescribeKeyCommand({ KeyId: 'alias/tmp' }));
    assert(d4.KeyMetadata.KeyId === state.ECC_NIST_P256, 'updated alias');
    await send(new kms.DeleteAliasCommand({ AliasName: 'alias/tmp' }));
    await rejects(send(new kms.DescribeKeyCommand({ KeyId: 'alias/tmp' })), 'NotFoundException');
    await send(new kms.CreateAliasCommand({ AliasName: 'alias/zapdb', TargetKeyId: sym }));
  });

  await test('test_aws_encrypt_decrypt_context_ok_wrong_context_fails', async () => {
    const ctx = { purpose: 'test', tenant: 'acme' };
    const e = await send(new kms.EncryptCommand({
      KeyId: 'alias/app', Plaintext: enc.encode('hello kmsd'), EncryptionContext: ctx }));
    assert(e.EncryptionAlgorithm === 'SYMMETRIC_DEFAULT', 'alg');
    const d = await send(new kms.DecryptCommand({
      CiphertextBlob: e.CiphertextBlob, EncryptionContext: { tenant: 'acme', purpose: 'test' } }));
    assert(Buffer.from(d.Plaintext).toString() === 'hello kmsd', 'plaintext');
    assert(d.KeyId.endsWith(state.SYMMETRIC_DEFAULT), 'KeyId from the blob');
    await rejects(send(new kms.DecryptCommand({
      CiphertextBlob: e.CiphertextBlob, EncryptionContext: { tenant: 'other', purpose: 'test' } })),
      'InvalidCiphertextException');
    await rejects(send(new kms.DecryptCommand({ CiphertextBlob: e.CiphertextBlob })),
      'InvalidCiphertextException');
    const bad = Buffer.from(e.CiphertextBlob); bad[bad.length - 1] ^= 1;
    await rejects(send(new kms.DecryptCommand({ CiphertextBlob: bad, EncryptionContext: ctx })),
      'InvalidCiphertextException');
    await rejects(send(new kms.DecryptCommand({ CiphertextBlob: Buffer.from('garbage') })),
      'InvalidCiphertextException');
    await rejects(send(new kms.EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.alloc(4097) })),
      'ValidationException');
    await rejects(send(new kms.EncryptCommand({ KeyId: state.ECC_NIST_P256, Plaintext: enc.encode('x') })),
      'InvalidKeyUsageException');
    await rejects(send(new kms.EncryptCommand({ KeyId: 'no-such-key', Plaintext: enc.encode('x') })),
      'NotFoundException');
  });

  await test('test_aws_reencrypt_and_data_keys_ok', async () => {
    const k2 = (await send(new kms.CreateKeyCommand({}))).KeyMetadata.KeyId;
    const e = await send(new kms.EncryptCommand({ KeyId: 'alias/app', Plaintext: enc.encode('move me') }));
    const r = await send(new kms.ReEncryptCommand({ CiphertextBlob: e.CiphertextBlob, DestinationKeyId: k2,
      DestinationEncryptionContext: { k: 'v' } }));
    assert(r.KeyId.endsWith(k2) && r.SourceKeyId.endsWith(state.SYMMETRIC_DEFAULT), 'ids');
    const d = await send(new kms.DecryptCommand({ CiphertextBlob: r.CiphertextBlob, EncryptionContext: { k: 'v' } }));
    assert(Buffer.from(d.Plaintext).toString() === 'move me', 're-encrypted');
    const dk = await send(new kms.GenerateDataKeyCommand({ KeyId: 'alias/app', KeySpec: 'AES_256',
      EncryptionContext: { f: 'g' } }));
    assert(dk.Plaintext.length === 32, '32 bytes');
    const dd = await send(new kms.DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { f: 'g' } }));
    assert(Buffer.compare(Buffer.from(dd.Plaintext), Buffer.from(dk.Plaintext)) === 0, 'same data key');
    const np = await send(new kms.GenerateDataKeyWithoutPlaintextCommand({ KeyId: 'alias/app', NumberOfBytes: 64 }));
    assert(np.Plaintext === undefined && np.CiphertextBlob.length > 64, 'no plaintext');
    await rejects(send(new kms.GenerateDataKeyCommand({ KeyId: 'alias/app', NumberOfBytes: 1025 })),
      'ValidationException');
    const rnd = await send(new kms.GenerateRandomCommand({ NumberOfBytes: 1024 }));
    assert(rnd.Plaintext.length === 1024, 'random');
    await rejects(send(new kms.GenerateRandomCommand({ NumberOfBytes: 0 })), 'ValidationException');
  });

  await test('test_aws_sign_verify_pubkey_node_crypto_ok', async () => {
    for (const spec of ['ECC_NIST_P256', 'ECC_SECG_P256K1']) {
      const id = state[spec];
      const msg = enc.encode(`message ${spec}`);
      const s = await send(new kms.SignCommand({ KeyId: id, Message: msg, MessageType: 'RAW',
        SigningAlgorithm: 'ECDSA_SHA_256' }));
      const pk = await send(new kms.GetPublicKeyCommand({ KeyId: id }));
      assert(pk.KeySpec === spec && pk.SigningAlgorithms[0] === 'ECDSA_SHA_256', 'pubkey meta');
      const key = crypto.createPublicKey({ key: Buffer.from(pk.PublicKey), format: 'der', type: 'spki' });
      assert(crypto.verify('sha256', msg, key, Buffer.from(s.Signature)), 'node verifies DER');
      const v = await send(new kms.VerifyCommand({ KeyId: id, Message: msg, Signature: s.Signature,
        SigningAlgorithm: 'ECDSA_SHA_256' }));
      assert(v.SignatureValid === true, 'valid');
      const dg = crypto.createHash('sha256').update(msg).digest();
      const s2 = await send(new kms.SignCommand({ KeyId: id, Message: dg, MessageType: 'DIGEST',
        SigningAlgorithm: 'ECDSA_SHA_256' }));
      assert(crypto.verify('sha256', msg, key, Buffer.from(s2.Signature)), 'digest signature');
    }
  });

  await test('test_aws_ed25519_sign_verify_node_crypto_ok', async () => {
    const id = (await send(new kms.CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519',
      KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata.KeyId;
    const msg = enc.encode('pure ed25519');
    const s = await send(new kms.SignCommand({ KeyId: id, Message: msg, MessageType: 'RAW',
      SigningAlgorithm: 'ED25519_SHA_512' }));
    assert(s.Signature.length === 64, '64-byte signature');
    const pk = await send(new kms.GetPublicKeyCommand({ KeyId: id }));
    const key = crypto.createPublicKey({ key: Buffer.from(pk.PublicKey), format: 'der', type: 'spki' });
    assert(crypto.verify(null, msg, key, Buffer.from(s.Signature)), 'node verifies Ed25519');
    await rejects(send(new kms.SignCommand({ KeyId: id, Message: Buffer.alloc(32), MessageType: 'DIGEST',
      SigningAlgorithm: 'ED25519_SHA_512' })), 'ValidationException');
  });

  await test('test_aws_wrong_signature_rejected', async () => {
    const id = state.ECC_NIST_P256;
    const msg = enc.encode('original');
    const s = await send(new kms.SignCommand({ KeyId: id, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256' }));
    await rejects(send(new kms.VerifyCommand({ KeyId: id, Message: enc.encode('changed'),
      Signature: s.Signature, SigningAlgorithm: 'ECDSA_SHA_256' })), 'KMSInvalidSignatureException');
    await rejects(send(new kms.SignCommand({ KeyId: id, Message: msg, SigningAlgorithm: 'ML_DSA_SHAKE_256' })),
      'InvalidKeyUsageException');
    await rejects(send(new kms.SignCommand({ KeyId: id, Message: Buffer.alloc(5), MessageType: 'DIGEST',
      SigningAlgorithm: 'ECDSA_SHA_256' })), 'ValidationException');
  });

  await test('test_aws_mldsa_raw_and_external_mu_ok', async () => {
    for (const spec of ['ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87']) {
      const id = state[spec];
      const msg = enc.encode(`pq ${spec}`);
      const s = await send(new kms.SignCommand({ KeyId: id, Message: msg, MessageType: 'RAW',
        SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
      const v = await send(new kms.VerifyCommand({ KeyId: id, Message: msg, Signature: s.Signature,
        MessageType: 'RAW', SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
      assert(v.SignatureValid, 'valid');
      // external mu = SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || msg, 64) (FIPS 204)
      const pk = await send(new kms.GetPublicKeyCommand({ KeyId: id }));
      const rawPk = Buffer.from(pk.PublicKey).subarray(-({ ML_DSA_44: 1312, ML_DSA_65: 1952, ML_DSA_87: 2592 })[spec]);
      const tr = crypto.createHash('shake256', { outputLength: 64 }).update(rawPk).digest();
      const mu = crypto.createHash('shake256', { outputLength: 64 })
        .update(Buffer.concat([tr, Buffer.from([0, 0]), Buffer.from(msg)])).digest();
      const v2 = await send(new kms.VerifyCommand({ KeyId: id, Message: mu, Signature: s.Signature,
        MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
      assert(v2.SignatureValid, 'RAW signature verifies as EXTERNAL_MU');
      const s2 = await send(new kms.SignCommand({ KeyId: id, Message: mu, MessageType: 'EXTERNAL_MU',
        SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
      const v3 = await send(new kms.VerifyCommand({ KeyId: id, Message: msg, Signature: s2.Signature,
        MessageType: 'RAW', SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
      assert(v3.SignatureValid, 'EXTERNAL_MU signature verifies as RAW');
      const bad = Buffer.from(s.Signature); bad[10] ^= 1;
      await rejects(send(new kms.VerifyCommand({ KeyId: id, Message: msg, Signature: bad,
        SigningAlgorithm: 'ML_DSA_SHAKE_256' })), 'KMSInvalidSignatureException');
    }
  });

  await test('test_aws_rotation_ok_old_ciphertext_decrypts', async () => {
    const id = state.SYMMETRIC_DEFAULT;
    const old = await send(new kms.EncryptCommand({ KeyId: id, Plaintext: enc.encode('before') }));
    await send(new kms.EnableKeyRotationCommand({ KeyId: id, RotationPeriodInDays: 90 }));
    let st = await send(new kms.GetKeyRotationStatusCommand({ KeyId: id }));
    assert(st.KeyRotationEnabled === true && st.RotationPeriodInDays === 90, 'enabled');
    await rejects(send(new kms.EnableKeyRotationCommand({ KeyId: id, RotationPeriodInDays: 10 })),
      'ValidationException');
    await send(new kms.RotateKeyOnDemandCommand({ KeyId: id }));
    const d = await send(new kms.DecryptCommand({ CiphertextBlob: old.CiphertextBlob }));
    assert(Buffer.from(d.Plaintext).toString() === 'before', 'old version decrypts');
    const nw = await send(new kms.EncryptCommand({ KeyId: id, Plaintext: enc.encode('after') }));
    assert(Buffer.compare(Buffer.from(nw.CiphertextBlob).subarray(0, 48),
      Buffer.from(old.CiphertextBlob).subarray(0, 48)) !== 0, 'new version in the blob');
    await send(new kms.DisableKeyRotationCommand({ KeyId: id }));
    st = await send(new kms.GetKeyRotationStatusCommand({ KeyId: id }));
    assert(st.KeyRotationEnabled === false, 'disabled');
  });

  await test('test_aws_tags_ok', async () => {
    const id = state.ML_DSA_44;
    await send(new kms.TagResourceCommand({ KeyId: id, Tags: [{ TagKey: 'env', TagValue: 'test' }] }));
    let t = await send(new kms.ListResourceTagsCommand({ KeyId: id }));
    assert(t.Tags.length === 2, 'two tags');
    await send(new kms.UntagResourceCommand({ KeyId: id, TagKeys: ['team'] }));
    t = await send(new kms.ListResourceTagsCommand({ KeyId: id }));
    assert(t.Tags.length === 1 && t.Tags[0].TagKey === 'env', 'one tag');
  });

  await test('test_aws_disable_and_scheduled_deletion_states', async () => {
    const id = (await send(new kms.CreateKeyCommand({}))).KeyMetadata.KeyId;
    const e = await send(new kms.EncryptCommand({ KeyId: id, Plaintext: enc.encode('x') }));
    await send(new kms.DisableKeyCommand({ KeyId: id }));
    await rejects(send(new kms.EncryptCommand({ KeyId: id, Plaintext: enc.encode('x') })), 'DisabledException');
    await send(new kms.EnableKeyCommand({ KeyId: id }));
    await rejects(send(new kms.ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: 6 })),
      'ValidationException');
    const s = await send(new kms.ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: 7 }));
    assert(s.KeyState === 'PendingDeletion' && s.PendingWindowInDays === 7, 'pending');
    assert(s.DeletionDate instanceof Date && s.DeletionDate > new Date(Date.now() + 6 * 86400e3), 'date');
    const d = await send(new kms.DescribeKeyCommand({ KeyId: id }));
    assert(d.KeyMetadata.KeyState === 'PendingDeletion', 'described');
    await rejects(send(new kms.DecryptCommand({ CiphertextBlob: e.CiphertextBlob })), 'KMSInvalidStateException');
    await send(new kms.CancelKeyDeletionCommand({ KeyId: id }));
    const d2 = await send(new kms.DescribeKeyCommand({ KeyId: id }));
    assert(d2.KeyMetadata.KeyState === 'Disabled', 'disabled after cancel');
    await rejects(send(new kms.CancelKeyDeletionCommand({ KeyId: id })), 'KMSInvalidStateException');
    const l = await send(new kms.ListKeysCommand({}));
    assert(l.Keys.some((k) => k.KeyId === id) && l.Keys.length >= 8, 'listed');
  });

  await test('test_aws_import_key_material_ok', async () => {
    const m = (await send(new kms.CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata;
    assert(m.KeyState === 'PendingImport' && m.Origin === 'EXTERNAL', 'pending import');
    await rejects(send(new kms.EncryptCommand({ KeyId: m.KeyId, Plaintext: enc.encode('x') })),
      'KMSInvalidStateException');
    await rejects(send(new kms.GetParametersForImportCommand({ KeyId: m.KeyId,
      WrappingAlgorithm: 'RSAES_PKCS1_V1_5', WrappingKeySpec: 'RSA_2048' })), 'UnsupportedOperationException');
    const p = await send(new kms.GetParametersForImportCommand({ KeyId: m.KeyId,
      WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_3072' }));
    assert(p.ParametersValidTo instanceof Date, 'valid-to date');
    const wrapKey = crypto.createPublicKey({ key: Buffer.from(p.PublicKey), format: 'der', type: 'spki' });
    const material = crypto.randomBytes(32);
    const wrapped = crypto.publicEncrypt({ key: wrapKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256' }, material);
    const bad = Buffer.from(wrapped); bad[3] ^= 1;
    await rejects(send(new kms.ImportKeyMaterialCommand({ KeyId: m.KeyId, ImportToken: p.ImportToken,
      EncryptedKeyMaterial: bad, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' })),
      'IncorrectKeyMaterialException');
    // the token was used up by the failed attempt
    await rejects(send(new kms.ImportKeyMaterialCommand({ KeyId: m.KeyId, ImportToken: p.ImportToken,
      EncryptedKeyMaterial: wrapped })), 'InvalidImportTokenException');
    const p2 = await send(new kms.GetParametersForImportCommand({ KeyId: m.KeyId,
      WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_3072' }));
    const wrapKey2 = crypto.createPublicKey({ key: Buffer.from(p2.PublicKey), format: 'der', type: 'spki' });
    const wrapped2 = crypto.publicEncrypt({ key: wrapKey2, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256' }, material);
    await send(new kms.ImportKeyMaterialCommand({ KeyId: m.KeyId, ImportToken: p2.ImportToken,
      EncryptedKeyMaterial: wrapped2, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }));
    const d = await send(new kms.DescribeKeyCommand({ KeyId: m.KeyId }));
    assert(d.KeyMetadata.KeyState === 'Enabled' && d.KeyMetadata.Origin === 'EXTERNAL', 'enabled');
    const e = await send(new kms.EncryptCommand({ KeyId: m.KeyId, Plaintext: enc.encode('byok') }));
    const dd = await send(new kms.DecryptCommand({ CiphertextBlob: e.CiphertextBlob }));
    assert(Buffer.from(dd.Plaintext).toString() === 'byok', 'round trip');
    // AES-256-GCM with the imported key, checked outside kmsd (docs/keys.md format)
    const blob = Buffer.from(e.CiphertextBlob);
    const hl = 6 + blob[5] + 4;
    const dc = crypto.createDecipheriv('aes-256-gcm', material, blob.subarray(hl, hl + 12));
    dc.setAAD(Buffer.concat([blob.subarray(0, hl), Buffer.from([0])]));
    dc.setAuthTag(blob.subarray(blob.length - 16));
    const pt = Buffer.concat([dc.update(blob.subarray(hl + 12, blob.length - 16)), dc.final()]);
    assert(pt.toString() === 'byok', 'decrypted by Node with the owner\'s key');
  });

  await test('test_aws_unsupported_operation_rejected', async () => {
    await rejects(send(new kms.GenerateMacCommand({ KeyId: 'alias/app', Message: enc.encode('x'),
      MacAlgorithm: 'HMAC_SHA_256' })), 'UnsupportedOperationException');
    await rejects(send(new kms.GetKeyPolicyCommand({ KeyId: 'alias/app', PolicyName: 'default' })),
      'UnsupportedOperationException');
  });

  await test('test_aws_wrong_access_key_rejected', async () => {
    const bad = new kms.KMSClient({ region: 'us-east-1', endpoint, maxAttempts: 1,
      credentials: { accessKeyId: 'AKIAAAAAAAAAAAAAAAAA', secretAccessKey: creds.secretAccessKey } });
    await rejects(bad.send(new kms.ListKeysCommand({})), 'UnrecognizedClientException');
    const bad2 = new kms.KMSClient({ region: 'us-east-1', endpoint, maxAttempts: 1,
      credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: 'x' + creds.secretAccessKey.slice(1) } });
    await rejects(bad2.send(new kms.ListKeysCommand({})), 'InvalidSignatureException');
  });

  await test('test_aws_request_after_skew_window_rejected', async () => {
    // Sign a request as if 10 minutes ago (a replay past the 5-minute
    // window) with the SDK's own signer, and send it unchanged. The
    // SDK client itself would correct its clock from the Date header.
    const url = new URL(endpoint);
    const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 'kms', sha256: Sha256 });
    const body = '{}';
    const req = {
      method: 'POST', protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path: '/',
      headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'TrentService.ListKeys' },
      body,
    };
    const send1 = async (when) => {
      const s = await signer.sign(req, { signingDate: when });
      const r = await fetch(endpoint + '/', { method: 'POST', headers: s.headers, body });
      return [r.status, await r.json()];
    };
    const [ok] = await send1(new Date());
    assert(ok === 200, `fresh request accepted (${ok})`);
    const [st, j] = await send1(new Date(Date.now() - 600e3));
    assert(st === 400 && j.__type === 'InvalidSignatureException', JSON.stringify(j));
    const [st2, j2] = await send1(new Date(Date.now() + 600e3));
    assert(st2 === 400 && j2.__type === 'InvalidSignatureException', 'future');
    // unsigned
    const r = await fetch(endpoint + '/', { method: 'POST', body,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys' } });
    assert(r.status === 400 && (await r.json()).__type === 'MissingAuthenticationTokenException', 'unsigned');
  });

  if (process.env.LIMITED_AKID) {
    await test('test_aws_policy_denied_access_denied', async () => {
      const lim = new kms.KMSClient({ region: 'us-east-1', endpoint, maxAttempts: 1,
        credentials: { accessKeyId: process.env.LIMITED_AKID, secretAccessKey: process.env.LIMITED_SECRET } });
      const d = await lim.send(new kms.DescribeKeyCommand({ KeyId: 'alias/app' }));
      assert(d.KeyMetadata.KeyId === state.SYMMETRIC_DEFAULT, 'read allowed');
      await rejects(lim.send(new kms.EncryptCommand({ KeyId: 'alias/app', Plaintext: enc.encode('x') })),
        'AccessDeniedException');
      await rejects(lim.send(new kms.CreateKeyCommand({})), 'AccessDeniedException');
      await rejects(lim.send(new kms.ScheduleKeyDeletionCommand({ KeyId: 'alias/app' })), 'AccessDeniedException');
    });
  }

  if (process.env.PW_FILE && process.env.CT_FILE) {
    await test('test_aws_encrypt_zapdb_password_ok', async () => {
      const pw = fs.readFileSync(process.env.PW_FILE);
      const e = await send(new kms.EncryptCommand({ KeyId: 'alias/zapdb', Plaintext: pw }));
      fs.writeFileSync(process.env.CT_FILE, Buffer.from(e.CiphertextBlob).toString('base64'), { mode: 0o600 });
    });
  }

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
