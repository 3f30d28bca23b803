// The API documentation page: Swagger UI over /openapi.json, nothing fetched from
// elsewhere. The dashboard's token (kept for this browser tab) is sent along, so that
// /openapi.json and "Try it out" work when the daemon requires one.
"use strict";
(function () {
  const TOKEN_KEY = "inboxd.token";

  function withToken(request) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token && !request.headers.Authorization) {
      request.headers.Authorization = "Bearer " + token;
    }
    return request;
  }

  // Deferred after the bundle: the page is parsed and SwaggerUIBundle is defined.
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    requestInterceptor: withToken,
  });
})();
