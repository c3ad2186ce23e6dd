// Small shared pieces of the services: timestamps and row <-> API value conversions.

import { randomUUID } from 'node:crypto';
import type { StandardAttrs } from '../db/schema.js';

/** Neutron's resource timestamp format: 2026-11-26T13:10:53Z. */
export const timestamp = (d = new Date()): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export const newId = (): string => randomUUID();

export const b = (v: number): boolean => v === 1;
export const i = (v: boolean): number => (v ? 1 : 0);

/** Columns every standard-attribute resource gets on create. */
export function stdCreate(projectId: string, name = '', description = '') {
  const now = timestamp();
  return { id: newId(), project_id: projectId, name, description, revision_number: 0, created_at: now, updated_at: now };
}

/** The common part of every API body: both project_id and tenant_id, as Neutron does. */
export function stdView(row: StandardAttrs) {
  return {
    id: row.id,
    name: row.name,
    tenant_id: row.project_id,
    project_id: row.project_id,
    description: row.description,
    created_at: row.created_at,
    updated_at: row.updated_at,
    revision_number: Number(row.revision_number),
  };
}

export function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let k = 0; k < xs.length; k += n) out.push(xs.slice(k, k + n));
  return out;
}
