// Swagger UI for /openapi.json, started from a file rather than an inline script, so the page's CSP holds.
'use strict';
window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });
