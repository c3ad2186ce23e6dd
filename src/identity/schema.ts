// Identity's tables. They live in the server's database beside Neutron's, under their own
// migration history (identity_migration), so the identity service can be moved to another
// database or process without touching the network schema. Names follow Keystone's models
// with an `identity_` prefix (`user` is reserved in PostgreSQL). Booleans are 0/1 integers,
// times are epoch milliseconds, so SQLite and PostgreSQL rows look the same to the code.

export interface DomainRow {
  id: string;
  name: string;
  description: string;
  enabled: number;
}

export interface ProjectRow {
  id: string;
  name: string;
  domain_id: string;
  description: string;
  enabled: number;
}

export interface UserRow {
  id: string;
  name: string;
  domain_id: string;
  /** scrypt$N$r$p$salt$hash (./password.ts) */
  password_hash: string;
  enabled: number;
  default_project_id: string | null;
}

export interface RoleRow {
  id: string;
  name: string;
}

/** A role a user holds on a project (Keystone's UserProject assignment). */
export interface AssignmentRow {
  user_id: string;
  project_id: string;
  role_id: string;
}

/** An issued token: only its SHA-256 is kept, so a database dump does not hand out sessions. */
export interface TokenRow {
  token_hash: string;
  user_id: string;
  /** null for an unscoped token */
  project_id: string | null;
  methods: string; // comma separated: password,token
  audit_id: string;
  issued_at: number;
  expires_at: number;
  revoked: number;
}

export interface RegionRow {
  id: string;
  description: string;
}

export interface ServiceRow {
  id: string;
  type: string;
  name: string;
  description: string;
  enabled: number;
}

export interface EndpointRow {
  id: string;
  service_id: string;
  region_id: string;
  interface: string; // public | internal | admin
  url: string;
  enabled: number;
}

export interface IdentityDatabase {
  identity_domains: DomainRow;
  identity_projects: ProjectRow;
  identity_users: UserRow;
  identity_roles: RoleRow;
  identity_assignments: AssignmentRow;
  identity_tokens: TokenRow;
  identity_regions: RegionRow;
  identity_services: ServiceRow;
  identity_endpoints: EndpointRow;
}
