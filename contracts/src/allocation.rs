//! Allocations: a member moves amounts between its own inventory and its customers'
//! segregated sub-accounts (the patent's customer-deposit database, first embodiment
//! S101c: the exchange nets its customers internally and trades only the excess from
//! inventory). A batch is the periodic sync of the exchange's own customer database;
//! all of it applies or none.

use crate::error::ContractError;
use crate::ledger::Ledger;
use seisan_types::receipt::Event;
use seisan_types::tx::{
    Allocation, AllocationDirection, MAX_ALLOCATIONS_PER_BATCH, MAX_CUSTOMER_ID_BYTES,
};
use seisan_types::MemberId;

impl Ledger<'_> {
    pub(crate) fn allocate(
        &mut self,
        member: MemberId,
        allocation: &Allocation,
    ) -> Result<(), ContractError> {
        let asset = allocation.asset;
        self.asset_exists(asset)?;
        let customer = allocation.customer.0.as_str();
        if customer.is_empty() || customer.len() > MAX_CUSTOMER_ID_BYTES {
            return Err(ContractError::BadCustomerId {
                length: customer.len(),
                limit: MAX_CUSTOMER_ID_BYTES,
            });
        }
        let amount = allocation.amount;
        if amount.is_zero() {
            return Err(ContractError::ZeroAmount { what: "allocation" });
        }
        let held = self.customer_amount(member, asset, customer);
        match allocation.direction {
            AllocationDirection::ToCustomer => {
                let available = self.balance(member, asset).inventory;
                if available < amount {
                    return Err(ContractError::InsufficientAvailable {
                        member,
                        asset,
                        needed: amount,
                        available,
                    });
                }
                let after = held.checked_add(amount).expect("bounded by supply");
                self.set_customer_amount(member, asset, customer, after);
                self.shift_to_customers(member, asset, amount, true);
            }
            AllocationDirection::ToInventory => {
                let after = held.checked_sub(amount).ok_or_else(|| {
                    ContractError::InsufficientCustomer {
                        member,
                        asset,
                        customer: customer.to_string(),
                        needed: amount,
                        available: held,
                    }
                })?;
                self.set_customer_amount(member, asset, customer, after);
                self.shift_to_customers(member, asset, amount, false);
            }
        }
        self.emit(Event::Allocated {
            member,
            asset,
            customer: allocation.customer.clone(),
            amount,
            direction: allocation.direction,
        });
        Ok(())
    }

    /// Applies every allocation in order; the first failure rejects the whole batch
    /// (the transaction is rolled back by the caller).
    pub(crate) fn allocate_batch(
        &mut self,
        member: MemberId,
        batch: &[Allocation],
    ) -> Result<(), ContractError> {
        if batch.is_empty() || batch.len() > MAX_ALLOCATIONS_PER_BATCH {
            return Err(ContractError::BadBatchSize {
                count: batch.len(),
                limit: MAX_ALLOCATIONS_PER_BATCH,
            });
        }
        for allocation in batch {
            self.allocate(member, allocation)?;
        }
        Ok(())
    }
}
