// Swagger UI's start-up, kept out of docs.html: the content security policy allows no inline script.
window.ui = window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,  // its default badge would ask validator.swagger.io about the document
  presets: [window.SwaggerUIBundle.presets.apis],
});
