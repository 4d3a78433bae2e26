"""RegistryAnchor: Solidity source, and the committed ABI and bytecode compiled from it."""
