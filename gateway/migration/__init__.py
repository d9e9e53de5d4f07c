"""Moving from Monosign's IIS module to the gateway: read its web.config, write the gateway's .env."""
