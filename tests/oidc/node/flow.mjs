// A Node application signing a person in through twostep with openid-client v6.
//
//   ISSUER=… CLIENT_ID=… [CLIENT_SECRET=…] REDIRECT_URI=… node flow.mjs
//
// It prints one JSON line {"authorize": URL} and reads one line from stdin: the callback URL the
// browser came back to (tests/oidc/test_node_client.py signs in through the pages in between).
// Then it redeems the code (PKCE, nonce and state checked by openid-client, the ID token verified
// against the provider's keys), reads userinfo, refreshes, revokes, and prints one JSON line with
// what it saw. Any failure is one line on stderr and exit status 1.
import * as client from 'openid-client'
import { createInterface } from 'node:readline'

const { ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = process.env
const SCOPE = 'openid profile email offline_access'

async function refusal (promise) {
  try {
    await promise
    return null
  } catch (error) {
    return error.error || error.code || String(error)
  }
}

async function main () {
  // Plain HTTP is allowed for the test's 127.0.0.1 only; a real deployment uses HTTPS.
  const auth = CLIENT_SECRET ? client.ClientSecretPost(CLIENT_SECRET) : client.None()
  const config = await client.discovery(new URL(ISSUER), CLIENT_ID, undefined, auth,
    { execute: [client.allowInsecureRequests] })

  const verifier = client.randomPKCECodeVerifier()
  const nonce = client.randomNonce()
  const state = client.randomState()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state
  })
  console.log(JSON.stringify({ authorize: url.href }))

  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  const callback = new URL((await lines.next()).value.trim())

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' })
  const revokedRefreshRefused = await refusal(client.refreshTokenGrant(config, refreshed.refresh_token))
  const oldRefreshRefused = await refusal(client.refreshTokenGrant(config, tokens.refresh_token))
  // Last, as a replay may end what the code gave (RFC 6749 4.1.2).
  const replayed = await refusal(client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state
  }))
  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token, post_logout_redirect_uri: REDIRECT_URI
  })

  console.log(JSON.stringify({
    issuer: config.serverMetadata().issuer,
    claims,
    userinfo,
    replayed,
    refreshed: {
      claims: refreshed.claims(),
      new_access_token: refreshed.access_token !== tokens.access_token,
      new_refresh_token: refreshed.refresh_token !== tokens.refresh_token
    },
    old_refresh_refused: oldRefreshRefused,
    revoked_refresh_refused: revokedRefreshRefused,
    logout: logout.href
  }))
}

main().catch((error) => {
  console.error(`openid-client flow failed: ${error.name}: ${error.message}` +
    (error.error ? ` (${error.error}: ${error.error_description})` : '') +
    (error.cause ? ` cause=${JSON.stringify(error.cause)}` : ''))
  process.exit(1)
})
