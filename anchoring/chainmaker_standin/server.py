"""The stand-in ``RpcNode`` gRPC server (see the package docstring for what it is and is not)."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from chainmaker.protos.accesscontrol.member_pb2 import MemberType
from chainmaker.protos.api import rpc_node_pb2_grpc
from chainmaker.protos.common.block_pb2 import BlockHeader, BlockInfo
from chainmaker.protos.common.request_pb2 import TxRequest, TxType
from chainmaker.protos.common.result_pb2 import ContractResult, Result, TxResponse, TxStatusCode
from chainmaker.protos.common.transaction_pb2 import Transaction, TransactionInfo
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from web3 import EthereumTesterProvider, Web3

from anchoring.anchor_backends.evm import contract_abi, contract_bytecode

CHAIN_QUERY = "CHAIN_QUERY"


def function_selectors() -> dict[str, str]:
    """hex selector -> function signature, for every function of RegistryAnchor's ABI."""
    selectors = {}
    for item in contract_abi():
        if item.get("type") == "function":
            signature = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            selectors[bytes(Web3.keccak(text=signature))[:4].hex()] = signature
    return selectors


@dataclass
class ReceivedTx:
    """What the stand-in accepted, for tests to inspect."""

    tx_id: str
    tx_type: int
    contract_name: str
    method: str
    calldata: bytes
    signer_org: str
    signer_cert_pem: bytes


@dataclass
class _Chain:
    height: int = 0
    head_hash: bytes = field(default_factory=lambda: hashlib.sha256(b"genesis").digest())
    txs: dict[str, TransactionInfo] = field(default_factory=dict)


class StandInNode(rpc_node_pb2_grpc.RpcNodeServicer):
    """Checks and executes the SDK's transactions; one block per accepted invoke."""

    def __init__(self, chain_id: str, contract_name: str, ca_cert_pem: bytes) -> None:
        self.chain_id = chain_id
        self.contract_name = contract_name
        self.ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
        self.selectors = function_selectors()
        self.received: list[ReceivedTx] = []
        self.rejected: list[str] = []
        self._chain = _Chain()
        self._lock = threading.Lock()
        self.w3 = Web3(EthereumTesterProvider())
        self.sender = self.w3.eth.accounts[0]
        factory = self.w3.eth.contract(abi=contract_abi(), bytecode=contract_bytecode())
        receipt = self.w3.eth.wait_for_transaction_receipt(
            factory.constructor().transact({"from": self.sender}))
        self.evm_address = receipt["contractAddress"]

    # --- door checks ---------------------------------------------------------------------------

    def _signer_problem(self, request: TxRequest) -> str | None:
        signer = request.sender.signer
        if signer.member_type != MemberType.CERT:
            return "only certificate members are accepted by this stand-in"
        try:
            cert = x509.load_pem_x509_certificate(bytes(signer.member_info))
        except ValueError:
            return "sender member_info is not a PEM certificate"
        try:
            self.ca_cert.public_key().verify(  # type: ignore[call-arg]
                cert.signature, cert.tbs_certificate_bytes,
                ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]
        except InvalidSignature:
            return "sender certificate is not issued by the organisation CA"
        orgs = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        if not orgs or orgs[0].value != signer.org_id:
            return "sender org_id does not match its certificate"
        try:
            cert.public_key().verify(  # type: ignore[call-arg]
                bytes(request.sender.signature), request.payload.SerializeToString(),
                ec.ECDSA(hashes.SHA256()))  # type: ignore[arg-type]
        except InvalidSignature:
            return "tx verify failed: sender signature does not verify over the payload"
        return None

    def _calldata(self, request: TxRequest) -> tuple[bytes | None, str | None]:
        params = {kv.key: bytes(kv.value) for kv in request.payload.parameters}
        if set(params) != {"data"}:
            return None, f"EVM call must carry exactly the parameter 'data', got {sorted(params)}"
        try:
            calldata = bytes.fromhex(params["data"].decode())
        except ValueError:
            return None, "parameter 'data' is not hex"
        method = request.payload.method
        if calldata[:4].hex() != method or method not in self.selectors:
            return None, f"method {method!r} is not a RegistryAnchor function selector"
        return calldata, None

    # --- RPC -----------------------------------------------------------------------------------

    def SendRequest(self, request: TxRequest, context: grpc.ServicerContext) -> TxResponse:
        payload = request.payload
        problem = self._signer_problem(request)
        if problem is None and payload.chain_id != self.chain_id:
            problem = f"chain id {payload.chain_id!r} is not {self.chain_id!r}"
        if problem is not None:
            self.rejected.append(problem)
            return TxResponse(code=TxStatusCode.INTERNAL_ERROR, message=problem,
                              tx_id=payload.tx_id)
        if payload.contract_name == CHAIN_QUERY:
            return self._chain_query(request)
        if payload.contract_name != self.contract_name:
            self.rejected.append(f"unknown contract {payload.contract_name}")
            return TxResponse(code=TxStatusCode.CONTRACT_FAIL, tx_id=payload.tx_id,
                              message=f"contract {payload.contract_name} does not exist")
        calldata, problem = self._calldata(request)
        if calldata is None:
            self.rejected.append(problem or "bad calldata")
            return TxResponse(code=TxStatusCode.INVALID_PARAMETER, message=problem or "",
                              tx_id=payload.tx_id)
        self.received.append(ReceivedTx(
            payload.tx_id, payload.tx_type, payload.contract_name, payload.method, calldata,
            request.sender.signer.org_id, bytes(request.sender.signer.member_info)))
        if payload.tx_type == TxType.QUERY_CONTRACT:
            output = bytes(self.w3.eth.call({"to": self.evm_address, "data": calldata}))
            return TxResponse(code=TxStatusCode.SUCCESS, tx_id=payload.tx_id,
                              contract_result=ContractResult(code=0, result=output))
        if payload.tx_type == TxType.INVOKE_CONTRACT:
            with self._lock:
                self._execute_in_new_block(request, calldata)
            return TxResponse(code=TxStatusCode.SUCCESS, tx_id=payload.tx_id, message="OK")
        return TxResponse(code=TxStatusCode.INVALID_PARAMETER, tx_id=payload.tx_id,
                          message=f"tx type {payload.tx_type} not supported by the stand-in")

    def SendRequestSync(self, request: TxRequest, context: grpc.ServicerContext) -> TxResponse:
        return self.SendRequest(request, context)

    def _execute_in_new_block(self, request: TxRequest, calldata: bytes) -> None:
        tx = {"from": self.sender, "to": self.evm_address, "data": calldata, "gas": 500_000}
        try:
            self.w3.eth.call(tx)
            reverted = None
        except Exception as exc:  # any revert reason is a contract failure
            reverted = str(exc)
        if reverted is None:
            tx_hash = self.w3.eth.send_transaction(tx)  # type: ignore[arg-type]
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
            if receipt["status"] != 1:
                reverted = "execution reverted"
            gas_used = int(receipt["gasUsed"])
        else:
            gas_used = 0
        if reverted is None:
            result = Result(code=TxStatusCode.SUCCESS, message="SUCCESS",
                            contract_result=ContractResult(code=0, gas_used=gas_used))
        else:
            result = Result(code=TxStatusCode.CONTRACT_FAIL, message="contract invoke failed",
                            contract_result=ContractResult(code=1, message=reverted))
        chain = self._chain
        chain.height += 1
        chain.head_hash = hashlib.sha256(chain.head_hash + request.payload.tx_id.encode())\
            .digest()
        chain.txs[request.payload.tx_id] = TransactionInfo(
            transaction=Transaction(payload=request.payload, sender=request.sender,
                                    result=result),
            block_height=chain.height, block_hash=chain.head_hash, tx_index=0,
            block_timestamp=int(time.time()))

    def _chain_query(self, request: TxRequest) -> TxResponse:
        payload = request.payload
        params = {kv.key: bytes(kv.value).decode() for kv in payload.parameters}
        if payload.method == "GET_TX_BY_TX_ID":
            info = self._chain.txs.get(params.get("txId", ""))
            if info is None:
                return TxResponse(code=TxStatusCode.CONTRACT_FAIL, tx_id=payload.tx_id,
                                  message="no such transaction",
                                  contract_result=ContractResult(code=1,
                                                                 message="no such transaction"))
            return TxResponse(code=TxStatusCode.SUCCESS, tx_id=payload.tx_id,
                              contract_result=ContractResult(code=0,
                                                             result=info.SerializeToString()))
        if payload.method == "GET_LAST_BLOCK":
            header = BlockHeader(chain_id=self.chain_id, block_height=self._chain.height,
                                 block_hash=self._chain.head_hash)
            block = BlockInfo()
            block.block.header.CopyFrom(header)
            return TxResponse(code=TxStatusCode.SUCCESS, tx_id=payload.tx_id,
                              contract_result=ContractResult(code=0,
                                                             result=block.SerializeToString()))
        return TxResponse(code=TxStatusCode.INVALID_PARAMETER, tx_id=payload.tx_id,
                          message=f"chain query {payload.method} not supported by the stand-in")


class StandInServer:
    """Runs a StandInNode on 127.0.0.1 with mutual TLS; ``stop``/``start`` keep its chain."""

    def __init__(self, node: StandInNode, server_cert: Path, server_key: Path,
                 ca_cert: Path) -> None:
        self.node = node
        self._credentials = grpc.ssl_server_credentials(
            [(server_key.read_bytes(), server_cert.read_bytes())],
            root_certificates=ca_cert.read_bytes(), require_client_auth=True)
        self.port = 0
        self._server: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        rpc_node_pb2_grpc.add_RpcNodeServicer_to_server(self.node, server)
        self.port = server.add_secure_port(f"127.0.0.1:{self.port}", self._credentials)
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
