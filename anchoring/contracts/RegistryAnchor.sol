// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title RegistryAnchor
/// @notice Public record of the national data registry's signed log checkpoints.
/// @dev One contract serves any number of logs. A log is named by its C2SP checkpoint origin
///      line; the contract keys it by keccak256(origin) so that every call has a fixed-size
///      argument. For each log it keeps the root and the SHA-256 of the full signed checkpoint
///      note at every anchored size. Sizes must grow strictly: an anchor can never be replaced,
///      and a registry that tried to present a smaller (forked or truncated) log would be
///      contradicted by what it anchored before. Only submitters chosen by the owner may write,
///      so the chain's record is the consortium's word, not anyone's.
contract RegistryAnchor {
    struct Anchor {
        bytes32 root;
        bytes32 checkpointHash;
    }

    address public owner;
    mapping(address => bool) public isSubmitter;

    mapping(bytes32 => uint64) private latestSize;
    mapping(bytes32 => mapping(uint64 => Anchor)) private anchors;

    event Anchored(bytes32 indexed origin, uint64 indexed size, bytes32 root, bytes32 checkpointHash);
    event SubmitterSet(address indexed submitter, bool allowed);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error NotSubmitter(address caller);
    error SizeNotIncreasing(bytes32 origin, uint64 latestSize, uint64 size);
    error ZeroRoot();
    error ZeroAddress();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
        isSubmitter[msg.sender] = true;
        emit OwnershipTransferred(address(0), msg.sender);
        emit SubmitterSet(msg.sender, true);
    }

    /// @notice Record that the log `origin` had root `root` at `size` leaves.
    /// @param checkpointHash SHA-256 of the full signed checkpoint note (UTF-8 bytes).
    function anchor(bytes32 origin, uint64 size, bytes32 root, bytes32 checkpointHash) external {
        if (!isSubmitter[msg.sender]) revert NotSubmitter(msg.sender);
        if (root == bytes32(0)) revert ZeroRoot();
        uint64 previous = latestSize[origin];
        if (size <= previous) revert SizeNotIncreasing(origin, previous, size);
        latestSize[origin] = size;
        anchors[origin][size] = Anchor(root, checkpointHash);
        emit Anchored(origin, size, root, checkpointHash);
    }

    /// @notice The largest anchored size of a log, with its root and checkpoint hash
    ///         (all zero when the log was never anchored).
    function latest(bytes32 origin)
        external
        view
        returns (uint64 size, bytes32 root, bytes32 checkpointHash)
    {
        size = latestSize[origin];
        Anchor storage a = anchors[origin][size];
        return (size, a.root, a.checkpointHash);
    }

    /// @notice The root and checkpoint hash anchored at exactly `size` (zero if none).
    function rootAt(bytes32 origin, uint64 size)
        external
        view
        returns (bytes32 root, bytes32 checkpointHash)
    {
        Anchor storage a = anchors[origin][size];
        return (a.root, a.checkpointHash);
    }

    function setSubmitter(address submitter, bool allowed) external onlyOwner {
        if (submitter == address(0)) revert ZeroAddress();
        isSubmitter[submitter] = allowed;
        emit SubmitterSet(submitter, allowed);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }
}
