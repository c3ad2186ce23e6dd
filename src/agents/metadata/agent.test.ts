// The metadata agent: what it asks the server, what it sends the metadata service, over a
// function call and over its UNIX socket; and the whole path from an instance through a
// qrouter's REDIRECT to the proxy on 9697, the agent and the compute metadata service.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMetadataAgentConfig } from '../../config/load.js';
import type { MetadataAgentConfig } from '../../config/agents.js';
import { HostComposer } from '../composer.js';
import { MetadataAgent } from './agent.js';
import { signInstanceId } from './signature.js';
import type { HttpRequest, HttpResponse } from './http.js';
import type { Transport } from '../../rpc/transport.js';
import { World } from '../../dataplane/emulated/world.js';
import { httpRequest, registerMetadataUpstream, type HttpReply } from '../../dataplane/emulated/apps/metadata.js';
import { renderTrace } from '../../trace/render.js';
import { addBridge, addFlows, addInternalPort, addMetadataProxy, addNamespace, addPort, addTap, emptyHost, iptablesText, setIptables, setSysctl, systemPort } from '../../host/build.js';
import { METADATA_IP, METADATA_PROXY_PORT, routerInterfaceDevice, routerNamespace, tapDevice } from '../../host/names.js';
import { InProcessBus } from '../../rpc/inproc.js';
import { client, demo, startTestServer } from '../../api/testing.js';
import { MetadataService } from '../../compute/metadata-service.js';

function config(dir: string, extra = ''): MetadataAgentConfig {
  const f = join(dir, 'metadata_agent.ini');
  writeFileSync(f, `[DEFAULT]\nhost = compute1\nnova_metadata_host = controller\nnova_metadata_port = 8775\nmetadata_proxy_shared_secret = s3cret\n${extra}`);
  return loadMetadataAgentConfig([f], { cwd: dir, warn: () => {} });
}

/** A transport that answers get_port_by_ip from a table and records the calls. */
function fakeServer(ports: Record<string, { port_id: string; device_id: string; project_id: string; network_id: string }>) {
  const calls: Array<{ method: string; args: any }> = [];
  const t: Transport = {
    async call<T>(_topic: string, method: string, args: any): Promise<T> {
      calls.push({ method, args });
      if (method === 'report_state') return { status: 'alive' } as T;
      if (method === 'get_port_by_ip') return (ports[`${args.ip_address}@${args.router_id ?? args.network_id}`] ?? null) as T;
      throw new Error(`unexpected ${method}`);
    },
    cast: async () => {},
    fanout: async () => {},
    serve: async () => async () => {},
    close: async () => {},
  };
  return { t, calls };
}

const nullDriver = { applyState: () => [], readState: () => emptyHost() };

test('the agent maps the proxy headers to the instance, signs its id and passes the answer on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-md-'));
  try {
    const { t, calls } = fakeServer({ '192.168.1.11@router-1': { port_id: 'p1', device_id: 'vm-1', project_id: 'demo', network_id: 'net-1' }, '192.168.1.11@net-1': { port_id: 'p1', device_id: 'vm-1', project_id: 'demo', network_id: 'net-1' } });
    const seen: HttpRequest[] = [];
    const nova = (r: HttpRequest): HttpResponse => (seen.push(r), { status: 200, headers: { 'content-type': 'text/plain' }, body: 'vm-1' });
    const agent = new MetadataAgent({ transport: t, host: 'compute1', composer: new HostComposer('compute1', nullDriver), config: config(dir), nova, reportInterval: 0, resyncInterval: 0 });
    await agent.start();
    const report = calls.find((c) => c.method === 'report_state')!.args.agent_state;
    assert.deepEqual([report.agent_type, report.binary, report.topic, report.host], ['Metadata agent', 'neutron-metadata-agent', 'N/A', 'compute1']);
    assert.equal(report.configurations.nova_metadata_port, 8775);

    const r = await agent.handle({ method: 'GET', path: '/latest/meta-data/instance-id', headers: { 'X-Forwarded-For': '192.168.1.11', 'X-Neutron-Router-ID': 'router-1' } });
    assert.deepEqual([r.status, r.body, r.headers['Content-Type']], [200, 'vm-1', 'text/plain']);
    assert.deepEqual(calls.at(-1), { method: 'get_port_by_ip', args: { ip_address: '192.168.1.11', router_id: 'router-1' } });
    assert.deepEqual(seen[0], {
      method: 'GET',
      path: '/latest/meta-data/instance-id',
      headers: { 'X-Forwarded-For': '192.168.1.11', 'X-Instance-ID': 'vm-1', 'X-Tenant-ID': 'demo', 'X-Instance-ID-Signature': signInstanceId('s3cret', 'vm-1') },
    });
    // Through a DHCP namespace's proxy: the network id; the last forwarded address is the proxy's.
    await agent.handle({ method: 'GET', path: '/', headers: { 'x-forwarded-for': '10.9.9.9, 192.168.1.11', 'x-neutron-network-id': 'net-1' } });
    assert.deepEqual(calls.at(-1)!.args, { ip_address: '192.168.1.11', network_id: 'net-1' });
    assert.equal(seen[1].headers['X-Forwarded-For'], '192.168.1.11');
    // Unknown address, both ids, neither id: no call to the metadata service.
    const n = seen.length;
    assert.equal((await agent.handle({ method: 'GET', path: '/', headers: { 'X-Forwarded-For': '192.168.1.99', 'X-Neutron-Router-ID': 'router-1' } })).status, 404);
    assert.equal((await agent.handle({ method: 'GET', path: '/', headers: { 'X-Forwarded-For': '192.168.1.11', 'X-Neutron-Router-ID': 'router-1', 'X-Neutron-Network-ID': 'net-1' } })).status, 404);
    assert.equal((await agent.handle({ method: 'GET', path: '/', headers: { 'X-Forwarded-For': '192.168.1.11' } })).status, 400);
    assert.equal(seen.length, n);
    await agent.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the metadata service refusing the signature comes back as 403; a failure as 500', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-md-'));
  try {
    const { t } = fakeServer({ '192.168.1.11@router-1': { port_id: 'p1', device_id: 'vm-1', project_id: 'demo', network_id: 'net-1' } });
    const service = new MetadataService({ secret: 'another-secret', instances: { instance: (id) => (id === 'vm-1' ? { id, name: 'vm', project_id: 'demo', host: 'compute1', fixed_ip: '192.168.1.11', security_groups: [] } : undefined) } });
    const mk = (nova: (r: HttpRequest) => HttpResponse | Promise<HttpResponse>) => new MetadataAgent({ transport: t, host: 'compute1', composer: new HostComposer('compute1', nullDriver), config: config(dir), nova, reportInterval: 0, resyncInterval: 0 });
    const req = { method: 'GET', path: '/latest/meta-data/instance-id', headers: { 'X-Forwarded-For': '192.168.1.11', 'X-Neutron-Router-ID': 'router-1' } };
    const warn = console.warn;
    console.warn = () => {};
    try {
      assert.equal((await mk((r) => service.handle(r)).handle(req)).status, 403);
    } finally {
      console.warn = warn;
    }
    const failing = mk(async () => {
      throw new Error('connection refused');
    });
    const orig = console.error;
    console.error = () => {};
    try {
      assert.equal((await failing.handle(req)).status, 500);
    } finally {
      console.error = orig;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the agent serves its UNIX socket and forwards to the metadata service over HTTP', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-md-'));
  const service = new MetadataService({ secret: 's3cret', instances: { instance: (id) => (id === 'vm-1' ? { id, name: 'vm', project_id: 'demo', host: 'compute1', fixed_ip: '192.168.1.11', security_groups: [] } : undefined) } });
  const nova = await service.listen({ port: 0 });
  try {
    const port = Number(new URL(nova.url).port);
    const conf = config(dir, `nova_metadata_port = ${port}\nnova_metadata_host = 127.0.0.1\nmetadata_proxy_socket = ${join(dir, 'metadata_proxy')}\n`);
    const { t } = fakeServer({ '192.168.1.11@router-1': { port_id: 'p1', device_id: 'vm-1', project_id: 'demo', network_id: 'net-1' } });
    const agent = new MetadataAgent({ transport: t, host: 'compute1', composer: new HostComposer('compute1', nullDriver), config: conf, listen: true, reportInterval: 0, resyncInterval: 0 });
    await agent.start();
    const body = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const r = request({ socketPath: conf.metadata_proxy_socket, path: '/latest/meta-data/instance-id', headers: { 'X-Forwarded-For': '192.168.1.11', 'X-Neutron-Router-ID': 'router-1' } }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      });
      r.on('error', reject);
      r.end();
    });
    assert.deepEqual(body, { status: 200, body: 'vm-1' });
    await agent.stop();
  } finally {
    await nova.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('end to end: an instance reads its instance-id through the qrouter REDIRECT, the proxy on 9697, the agent and the metadata service', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-md-'));
  const bus = new InProcessBus();
  const srvT = bus.transport();
  const agentT = bus.transport();
  const srv = await startTestServer('sqlite', { transport: srvT });
  const call = client(srv.url);
  try {
    const ok = async (p: Promise<{ status: number; body: any }>) => {
      const r = await p;
      assert.ok(r.status < 300, JSON.stringify(r.body));
      return r.body;
    };
    const net = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net' } }, demo))).network;
    const subnet = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '192.168.1.0/24', gateway_ip: '192.168.1.1' } }, demo))).subnet;
    const router = (await ok(call('POST', '/v2.0/routers', { router: { name: 'demo-router' } }, demo))).router;
    const itf = await ok(call('PUT', `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: subnet.id }, demo));
    const qr = (await ok(call('GET', `/v2.0/ports/${itf.port_id}`))).port;
    const instanceId = '7d1e57a0-0d5b-4b8e-9e0a-2c4f7f1e2b11';
    const vm = (await ok(call('POST', '/v2.0/ports', { port: { network_id: net.id, device_owner: 'compute:nova', device_id: instanceId, fixed_ips: [{ subnet_id: subnet.id, ip_address: '192.168.1.11' }] } }, demo))).port;

    // compute1 by hand: br-int, the router's namespace with its qr- port and the metadata
    // REDIRECT, the proxy, and the instance's tap (the L3 and OVS agents' part).
    const world = new World();
    const h = world.addHost('compute1');
    const conf = config(dir);
    const qrouter = routerNamespace(router.id);
    let s = emptyHost();
    s = addBridge(s, 'br-int');
    s = addFlows(s, 'br-int', [{ table: 0, priority: 0, actions: 'NORMAL' }]);
    s = addNamespace(s, qrouter);
    s = setSysctl(s, qrouter, 'net.ipv4.ip_forward', 1);
    s = addInternalPort(s, 'br-int', routerInterfaceDevice(qr.id), { namespace: qrouter, tag: 1, mac: qr.mac_address, addresses: ['192.168.1.1/24'] });
    s = addTap(s, '', tapDevice(vm.id));
    s = addPort(s, 'br-int', systemPort(tapDevice(vm.id), { tag: 1 }));
    const chains: Array<[string, string]> = [['PREROUTING', 'ACCEPT'], ['INPUT', 'ACCEPT'], ['OUTPUT', 'ACCEPT'], ['POSTROUTING', 'ACCEPT']];
    s = setIptables(s, qrouter, 'nat', iptablesText('nat', chains, [`-A PREROUTING -d ${METADATA_IP}/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports ${METADATA_PROXY_PORT}`]));
    s = addMetadataProxy(s, { id: router.id, namespace: qrouter, listen_ip: '0.0.0.0', listen_port: METADATA_PROXY_PORT, upstream: conf.metadata_proxy_socket, router_id: router.id });
    h.applyState(s);
    h.addInstance('vm1', { tap: tapDevice(vm.id), mac: vm.mac_address, ip: '192.168.1.11/24', gateway: '192.168.1.1' });

    const service = new MetadataService({
      secret: 's3cret',
      instances: { instance: (id) => (id === instanceId ? { id, name: 'demo-instance1', project_id: 'demo', host: 'compute1', fixed_ip: '192.168.1.11', security_groups: ['default'] } : undefined) },
    });
    const agent = new MetadataAgent({ transport: agentT, host: 'compute1', composer: new HostComposer('compute1', h), config: conf, nova: (r) => service.handle(r), reportInterval: 0, resyncInterval: 0 });
    await agent.start();
    const unplug = registerMetadataUpstream(h, conf.metadata_proxy_socket, (r) => agent.handle(r));
    try {
      const { response, traces } = await httpRequest(world, { host: 'compute1', ns: 'vm1' }, { dst: METADATA_IP, request: 'GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254' });
      const r = response as HttpReply;
      assert.deepEqual([r?.status, r?.body], [200, instanceId], traces.map((t) => renderTrace(t)).join('\n'));
      // The request went through the REDIRECT to the proxy on 9697; the answer left as 169.254.169.254:80.
      assert.ok(traces[0].delivered.some((d) => d.ns === qrouter && d.to === `tcp:${METADATA_PROXY_PORT}` && d.frame.data !== undefined), renderTrace(traces[0]));
      const back = traces.at(-1)!.delivered.find((d) => d.ns === 'vm1' && d.frame.data !== undefined)!;
      assert.deepEqual([back.frame.ip!.src, back.frame.l4?.kind === 'tcp' && back.frame.l4.sport], [METADATA_IP, 80]);
      // meta_data.json names the instance.
      const j = await httpRequest(world, { host: 'compute1', ns: 'vm1' }, { dst: METADATA_IP, request: { method: 'GET', path: '/openstack/latest/meta_data.json', headers: { 'X-Neutron-Router-ID': 'forged' } } });
      assert.equal(JSON.parse((j.response as HttpReply).body).uuid, instanceId);
      // Another address on the network is nobody's: 404 from the agent.
      h.ns('vm1').addAddr('eth0', '192.168.1.50/24');
      const other = await httpRequest(world, { host: 'compute1', ns: 'vm1' }, { dst: METADATA_IP, src: '192.168.1.50', request: 'GET /latest/meta-data/instance-id' });
      assert.equal((other.response as HttpReply).status, 404);
      assert.equal(agent.statuses.get(404), 1);
    } finally {
      unplug();
      await agent.stop();
    }
  } finally {
    await srv.destroy();
    await srvT.close();
    await agentT.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
