// The compute metadata service (Nova's metadata API as `service_metadata_proxy = True` runs
// it behind Neutron's metadata agent): it trusts the instance id of a request only when the
// X-Instance-ID-Signature is the HMAC-SHA256 of that id under the shared secret, and the
// X-Tenant-ID is the instance's project. It serves the EC2-style tree under
// `/<version>/meta-data/` and the OpenStack `meta_data.json`.
//
// Instances are looked up through `InstanceDirectory`, which the compute service implements.
// Differences from Nova: a missing signature is refused with 403 like a bad one (Nova says
// 400), and only the keys below exist.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { header, errorResponse, textResponse, type HttpRequest, type HttpResponse } from '../agents/metadata/http.js';
import { verifyInstanceSignature } from '../agents/metadata/signature.js';

export interface MetadataInstance {
  id: string;
  name: string;
  project_id: string;
  host: string;
  fixed_ip: string;
  floating_ip?: string;
  /** Security group names (EC2 `security-groups` lists names). */
  security_groups: string[];
  availability_zone?: string;
}

export interface InstanceDirectory {
  instance(id: string): MetadataInstance | undefined;
}

export interface MetadataServiceOptions {
  /** Nova's `[neutron] metadata_proxy_shared_secret`: the same text as the metadata agent's. */
  secret: string;
  instances: InstanceDirectory;
  /** Nova's `dhcp_domain` appended to EC2 host names (default `novalocal`). */
  dhcpDomain?: string;
}

/** EC2 versions Nova lists at `/` (and `latest`). */
const EC2_VERSIONS = ['1.0', '2007-01-19', '2009-04-04', 'latest'];

export class MetadataService {
  constructor(private readonly opts: MetadataServiceOptions) {}

  /** Answers one request (synchronous: the directory is in memory). */
  handle(req: HttpRequest): HttpResponse {
    if (req.method !== 'GET' && req.method !== 'HEAD') return errorResponse(405, `The method ${req.method} is not allowed for this resource.`);
    const instanceId = header(req, 'X-Instance-ID');
    const signature = header(req, 'X-Instance-ID-Signature');
    const tenantId = header(req, 'X-Tenant-ID');
    if (instanceId === undefined) return errorResponse(400, 'X-Instance-ID header is missing from request.');
    if (signature === undefined || !verifyInstanceSignature(this.opts.secret, instanceId, signature)) {
      return errorResponse(403, signature === undefined ? 'X-Instance-ID-Signature header is missing from request.' : 'Invalid proxy request signature.');
    }
    if (tenantId === undefined) return errorResponse(400, 'X-Tenant-ID header is missing from request.');
    const inst = this.opts.instances.instance(instanceId);
    if (!inst) return errorResponse(404, `Instance ${instanceId} could not be found.`);
    if (inst.project_id !== tenantId) return errorResponse(404, 'Tenant ID does not match.');
    const path = req.path.split('?')[0];
    const found = this.lookup(inst, path);
    if (found === undefined) return errorResponse(404, `The resource ${path} could not be found.`);
    return found;
  }

  private ec2(inst: MetadataInstance): Record<string, string | Record<string, string>> {
    const host = this.hostname(inst);
    return {
      hostname: host,
      'instance-id': inst.id,
      'local-hostname': host,
      'local-ipv4': inst.fixed_ip,
      placement: { 'availability-zone': inst.availability_zone ?? 'nova' },
      'public-hostname': host,
      'public-ipv4': inst.floating_ip ?? '',
      'security-groups': inst.security_groups.join('\n'),
    };
  }

  private hostname(inst: MetadataInstance): string {
    // Nova's sanitize_hostname: lower case, runs of other characters to '-', trimmed.
    const h = inst.name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'server';
    const domain = this.opts.dhcpDomain ?? 'novalocal';
    return domain ? `${h}.${domain}` : h;
  }

  private lookup(inst: MetadataInstance, path: string): HttpResponse | undefined {
    const parts = path.split('/').filter(Boolean);
    if (!parts.length) return textResponse(EC2_VERSIONS.join('\n'));
    if (parts[0] === 'openstack') {
      if (parts.length === 1) return textResponse('latest');
      if (parts[1] !== 'latest' && !/^\d{4}-\d\d-\d\d$/.test(parts[1])) return undefined;
      if (parts.length === 2) return textResponse('meta_data.json');
      if (parts.length === 3 && parts[2] === 'meta_data.json') return textResponse(JSON.stringify(this.metaDataJson(inst)), 'application/json');
      return undefined;
    }
    if (!EC2_VERSIONS.includes(parts[0])) return undefined;
    if (parts.length === 1) return textResponse('meta-data/');
    if (parts[1] !== 'meta-data') return undefined;
    let node: string | Record<string, string | Record<string, string>> = this.ec2(inst);
    for (const p of parts.slice(2)) {
      if (typeof node === 'string') return undefined;
      const next: string | Record<string, string> | undefined = node[p];
      if (next === undefined) return undefined;
      node = next;
    }
    if (typeof node === 'string') return textResponse(node);
    // A directory: its keys, sub-directories with a trailing slash (as Nova lists them).
    return textResponse(Object.keys(node).sort().map((k) => (typeof (node as Record<string, unknown>)[k] === 'string' ? k : `${k}/`)).join('\n'));
  }

  private metaDataJson(inst: MetadataInstance) {
    return {
      uuid: inst.id,
      name: inst.name,
      hostname: this.hostname(inst),
      project_id: inst.project_id,
      availability_zone: inst.availability_zone ?? 'nova',
      launch_index: 0,
      meta: {},
      devices: [],
    };
  }

  /** Serves over HTTP (Nova's `metadata_listen`/`metadata_listen_port`, default port 8775). */
  async listen(opts: { host?: string; port?: number } = {}): Promise<{ url: string; server: Server; close(): Promise<void> }> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        const body = Buffer.concat(chunks).toString('utf8');
        const r = this.handle({ method: req.method ?? 'GET', path: req.url ?? '/', headers, ...(body ? { body } : {}) });
        res.writeHead(r.status, r.headers);
        res.end(req.method === 'HEAD' ? undefined : r.body);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 8775, opts.host ?? '127.0.0.1', () => resolve());
    });
    const a = server.address() as AddressInfo;
    return { url: `http://${a.address}:${a.port}`, server, close: () => new Promise<void>((r) => server.close(() => r())) };
  }
}
