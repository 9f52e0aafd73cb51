//! Webhook verification schemes (PROVIDERS.md).
