// twostep — security keys and passkeys. The page carries the WebAuthn options as a JSON data
// block (#webauthn-options); this asks the browser for the credential and posts its JSON back in
// the form's hidden `credential` field, so the server sees an ordinary form post with its CSRF
// token. PublicKeyCredential.parse*OptionsFromJSON and toJSON are used where the browser has
// them; the base64url encoding below stands in where it does not.
(function () {
  "use strict";

  var data = document.getElementById("webauthn-options");
  var form = document.querySelector("form[data-webauthn]");
  if (!data || !form) { return; }
  var ceremony = form.getAttribute("data-webauthn");  // "create" or "get"
  var button = form.querySelector("[data-webauthn-start]");
  var status = form.querySelector("[data-webauthn-status]");
  var unsupported = form.querySelector("[data-webauthn-unsupported]");
  var Credential = window.PublicKeyCredential;
  if (!Credential || !navigator.credentials || !window.isSecureContext) { return; }
  unsupported.hidden = true;

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = window.atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBytes(item.id) });
    });
  }

  function parse(json) {
    if (ceremony === "create") {
      if (typeof Credential.parseCreationOptionsFromJSON === "function") {
        return Credential.parseCreationOptionsFromJSON(json);
      }
      return Object.assign({}, json, {
        challenge: toBytes(json.challenge),
        user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
        excludeCredentials: descriptors(json.excludeCredentials)
      });
    }
    if (typeof Credential.parseRequestOptionsFromJSON === "function") {
      return Credential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      allowCredentials: descriptors(json.allowCredentials)
    });
  }

  function encode(credential) {
    if (typeof credential.toJSON === "function") {
      try { return credential.toJSON(); } catch (ignored) { /* fall through to encoding by hand */ }
    }
    var r = credential.response, response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = toText(r.userHandle);
    }
    return {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type, response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}
    };
  }

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  function start() {
    var options;
    try {
      options = parse(JSON.parse(data.textContent).publicKey);
    } catch (error) {
      say(form.getAttribute("data-failed"));
      return;
    }
    button.disabled = true;
    say(form.getAttribute("data-waiting"));
    navigator.credentials[ceremony]({ publicKey: options }).then(function (credential) {
      form.querySelector("input[name=credential]").value = JSON.stringify(encode(credential));
      form.submit();
    }, function () {
      // Cancelled, timed out, or no matching key: say so and let the person try again.
      button.disabled = false;
      say(form.getAttribute("data-failed"));
    });
  }

  button.hidden = false;
  button.addEventListener("click", start);
})();
