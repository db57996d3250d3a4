// A real OpenID Connect provider for the test suite: panva's oidc-provider (OpenID Certified),
// with test people and a `groups` claim. Started by tests/oidc/provider.py as
//   node provider.mjs CONFIG.json
// where CONFIG names the port, the clients (with their redirect URIs), the people and an
// optional clock offset (seconds) that makes this provider's clock run early or late.
// It prints "listening <issuer>" once it serves.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

if (config.clock_offset) {
  // oidc-provider reads time through Date.now (iat, exp, code and session expiry): shifting it
  // is an identity provider whose clock is wrong, or one that hands out expired ID tokens.
  const realNow = Date.now;
  Date.now = () => realNow() + config.clock_offset * 1000;
}

const people = config.people; // { login: { email, name, groups } }
const issuer = `http://127.0.0.1:${config.port}`;
const signingKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [{ ...signingKey, kid: 'test-key-1', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // Every client must use PKCE, so a sign-in without it fails here as it would at Okta.
  pkce: { required: () => true },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: config.id_token_ttl ?? 300,
    // An hour, so that a provider whose clock runs late (clock_offset) still keeps its
    // browser cookies long enough to sign anyone in.
    Interaction: 3600,
    Grant: 3600,
    Session: 3600,
  },
  async findAccount(ctx, sub) {
    const person = people[sub];
    if (!person) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: person.email,
          email_verified: true,
          name: person.name,
          preferred_username: sub,
          groups: person.groups,
        };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
});

const server = http.createServer(provider.callback());
server.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
