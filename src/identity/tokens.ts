// Token values: 32 random bytes (256 bits) in base64url, opaque to clients. The database
// keeps only their SHA-256, so the lookup key cannot be replayed from a dump.

import { createHash, randomBytes } from 'node:crypto';

export const newToken = (): string => randomBytes(32).toString('base64url');

export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Keystone's audit ids: 16 random bytes, urlsafe base64 without padding (22 characters). */
export const newAuditId = (): string => randomBytes(16).toString('base64url');

/** Keystone's ids: uuid4 in hex, no dashes. */
export const newId = (): string => randomBytes(16).toString('hex');

/** Keystone's time format: ISO 8601 with microseconds and Z. */
export const keystoneTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
