// A headless SMART App Launch (standalone or EHR, authorization code + PKCE S256) with the SMART JS client
// (npm fhirclient), run by the gateway's integration tests against a live gateway in auto-approve mode.
//
// Input: one JSON object as the first argument:
//   {serverUrl, clientId, redirectUri, scope, clientSecret?, clientPrivateJwk?, readPatient?, refresh?,
//    launchUrl?}
// With launchUrl (the app launch URL an EHR opens, with iss and launch) it is an EHR launch: fhirclient
// takes iss and launch from that URL, as it does in a browser.
// Output (stdout): JSON {authorizeUrl, tokenResponse, patientId, encounterId, idToken, fhirUser, patient?,
//   refreshed? | refreshError?}.
// fhirclient runs on Node with its NodeAdapter; the "browser" is this script: it follows the authorize
// redirect itself and hands the callback URL back to fhirclient with the same server-side session.
"use strict";

const smart = require("fhirclient");

function fakeRequest(url, session) {
  const parsed = new URL(url);
  return {
    url: parsed.pathname + parsed.search,
    headers: { host: parsed.host, "x-forwarded-proto": parsed.protocol.replace(":", "") },
    socket: {},
    session,
  };
}

function fakeResponse() {
  return {
    location: null,
    writeHead(status, headers) {
      this.status = status;
      this.location = headers && headers.location;
    },
    end() {},
  };
}

async function main() {
  const input = JSON.parse(process.argv[2]);
  const session = {};
  const launchUrl = input.launchUrl || new URL("/launch", input.redirectUri).href;
  const authorizeUrl = await smart(fakeRequest(launchUrl, session), fakeResponse()).authorize({
    iss: input.launchUrl ? undefined : input.serverUrl,
    clientId: input.clientId,
    redirectUri: input.redirectUri,
    scope: input.scope,
    pkceMode: "required",
    clientSecret: input.clientSecret,
    clientPrivateJwk: input.clientPrivateJwk,
    noRedirect: true,
  });
  // the browser's part: the gateway (auto-approve) answers the authorize URL with a redirect to the app
  const approved = await fetch(authorizeUrl, { redirect: "manual" });
  const callback = approved.headers.get("location");
  if (approved.status !== 302 || !callback || !callback.startsWith(input.redirectUri)) {
    throw new Error(`authorize answered ${approved.status} ${callback}: ${await approved.text()}`);
  }
  const client = await smart(fakeRequest(callback, session), fakeResponse()).ready();
  const result = {
    authorizeUrl,
    tokenResponse: client.state.tokenResponse,
    patientId: client.patient.id,
    encounterId: client.encounter.id,
    idToken: client.getIdToken(),
    fhirUser: client.getFhirUser(),
  };
  if (input.readPatient) {
    result.patient = await client.patient.read();
  }
  if (input.refresh) {
    // fhirclient refreshes with the refresh token alone (no client authentication): fine for public
    // clients; a confidential client must authenticate (RFC 6749 §6), so the gateway refuses it
    try {
      result.refreshed = { ...(await client.refresh()).tokenResponse };
    } catch (error) {
      result.refreshError = { status: error.status, message: String(error.message) };
    }
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch((error) => {
  process.stderr.write(String((error && error.stack) || error) + "\n");
  process.exit(1);
});
