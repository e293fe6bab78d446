from .accounts import ROLES, ApiKey, User, Vendor
from .loyalty import (PROGRAM_TYPES, TRANSACTION_TYPES, AppleDeviceRegistration, IdempotencyRecord,
                      LoyaltyCard, LoyaltyProgram, LoyaltyReward, LoyaltyTransaction, PinLockout, ProgramSlug,
                      Refusal, StaffPin, WalletOutbox)

__all__ = [
    "ROLES", "ApiKey", "User", "Vendor", "PROGRAM_TYPES", "TRANSACTION_TYPES", "AppleDeviceRegistration",
    "IdempotencyRecord", "LoyaltyCard", "LoyaltyProgram", "LoyaltyReward", "LoyaltyTransaction", "PinLockout",
    "ProgramSlug", "Refusal", "StaffPin", "WalletOutbox",
]
