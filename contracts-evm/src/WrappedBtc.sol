// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title A wrapped-BTC test token for the Seisan testnet.
/// @notice A standard OpenZeppelin ERC-20 with 8 decimals (like WBTC). The whole supply
/// is minted once, to the deployer, which hands it out to the testnet's exchanges.
contract WrappedBtc is ERC20 {
    constructor(uint256 supply) ERC20("Wrapped BTC (Seisan testnet)", "WBTC") {
        _mint(msg.sender, supply);
    }

    function decimals() public pure override returns (uint8) {
        return 8;
    }
}
