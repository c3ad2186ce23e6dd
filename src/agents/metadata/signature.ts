// The shared-secret signature that lets the compute metadata service trust the instance id
// a metadata agent forwards: hex HMAC-SHA256 of the instance id keyed with
// `metadata_proxy_shared_secret` (Neutron's `_sign_instance_id`, Nova's
// `_validate_shared_secret`). Both sides import this one definition.

import { createHmac, timingSafeEqual } from 'node:crypto';

export function signInstanceId(secret: string, instanceId: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(instanceId, 'utf8')).digest('hex');
}

/** Constant-time check of a received signature (any spelling that is not the exact hex fails). */
export function verifyInstanceSignature(secret: string, instanceId: string, signature: string | undefined): boolean {
  if (typeof signature !== 'string') return false;
  const want = Buffer.from(signInstanceId(secret, instanceId), 'utf8');
  const got = Buffer.from(signature, 'utf8');
  return want.length === got.length && timingSafeEqual(want, got);
}
