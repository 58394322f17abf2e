// Swagger UI over the suite's merged OpenAPI document (served by the gateway).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  persistAuthorization: true,
});
