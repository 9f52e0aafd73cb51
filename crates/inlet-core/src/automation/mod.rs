//! Rules, actions and their retry policies, as the API and packs describe them.
