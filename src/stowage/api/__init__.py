"""HTTP adapters: each dialect translates wire format to core calls and back."""
