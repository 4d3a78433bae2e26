"""A protocol-level stand-in for a ChainMaker node, for tests only (not a chain).

No ChainMaker node can run on the development machines, so the ChainMaker backend is tested
against this in-process gRPC ``RpcNode`` server instead. It speaks the real wire protocol with
the protobuf modules shipped inside the official SDK, receives the SDK's real signed
transactions over mutual TLS, and checks them as a node would at the door: the sender's
certificate chains to the organisation CA, the signature over the serialized payload verifies
with that certificate's key, and the chain id, contract name, method selector and ABI calldata
are what the contract expects. It then executes the calldata against the real RegistryAnchor
bytecode in py-evm and answers with ChainMaker responses (tx result, block height and hash).
What it does not do: consensus, multiple nodes, ChainMaker's own EVM, its address derivation,
gas accounting, or any of ChainMaker's system contracts beyond the two chain queries the
backend uses.
"""
