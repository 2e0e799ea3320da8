// Test-only hospital SMART authorization server: panva's oidc-provider, configured for SMART Backend Services
// (client_credentials with private_key_jwt, RS384/ES384, JWT access tokens whose audience is the FHIR base).
//
// Started by the integration tests (tests/integration/peers.py). Settings from the environment:
//   PORT          port on 127.0.0.1 (0 = any free one); the first stdout line is {"port": N, "issuer": URL}
//   FHIR_BASE     the resource server (audience of every access token)
//   CLIENTS_FILE  JSON list of {client_id, jwks, alg}
//   TOKEN_TTL     access token lifetime in seconds (default 300)
// SMART rules enforced beyond what oidc-provider checks itself (exp, jti replay, iss, aud, alg per client):
// sub = client_id, a kid in the header, exp at most 5 minutes ahead.
import fs from 'node:fs';
import http from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

const fhirBase = process.env.FHIR_BASE;
const ttl = Number(process.env.TOKEN_TTL || 300);
const clients = JSON.parse(fs.readFileSync(process.env.CLIENTS_FILE, 'utf8'));

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signing = { ...(await exportJWK(privateKey)), kid: 'hospital-as-1', alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.PORT || 0), '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: c.alg,
    jwks: c.jwks,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  })),
  jwks: { keys: [signing] },
  clientAuthMethods: ['private_key_jwt'],
  enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384'] },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => fhirBase,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx) => ({
        scope: String(ctx.oidc.params.scope || ''),
        audience: fhirBase,
        accessTokenFormat: 'jwt',
        accessTokenTTL: ttl,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  async assertJwtClientAuthClaimsAndHeader(ctx, claims, header, client) {
    if (!header.kid) throw new errors.InvalidClientAuth('kid missing');
    if (claims.sub !== client.clientId) throw new errors.InvalidClientAuth('sub must be the client_id');
    if (claims.exp - Math.floor(Date.now() / 1000) > 300 + 5) throw new errors.InvalidClientAuth('exp more than 5 minutes ahead');
  },
});
provider.proxy = false;
server.on('request', provider.callback());
process.stdout.write(JSON.stringify({ port, issuer }) + '\n');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
