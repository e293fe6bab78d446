from .accounts import ROLES, ApiKey, User, Vendor
from .loyalty import (PROGRAM_TYPES, TRANSACTION_TYPES, AppleDeviceRegistration, IdempotencyRecord,
                      LoyaltyCard, LoyaltyProgram, LoyaltyReward, LoyaltyTransaction, LoyaltyTransactionNote,
                      PinLockout, ProgramSlug, Refusal, RetiredCard, StaffPin, WalletOutbox)
from .mail import EnrolFormNonce, MailOutbox, SignInLink
from .wallet_health import GoogleCallbackNonce, PassHealth, ProgramLocation
from .staff import OpeningHours, SignalReview, StaffDigest
from .messages import PassMessage, PassMessageDelivery, PassMessageOptOut

__all__ = [
    "ROLES", "ApiKey", "User", "Vendor", "PROGRAM_TYPES", "TRANSACTION_TYPES", "AppleDeviceRegistration",
    "IdempotencyRecord", "LoyaltyCard", "LoyaltyProgram", "LoyaltyReward", "LoyaltyTransaction",
    "LoyaltyTransactionNote", "PinLockout", "ProgramSlug", "Refusal", "RetiredCard", "StaffPin", "WalletOutbox",
    "EnrolFormNonce", "MailOutbox", "SignInLink", "GoogleCallbackNonce", "PassHealth", "ProgramLocation",
    "OpeningHours", "SignalReview", "StaffDigest", "PassMessage", "PassMessageDelivery", "PassMessageOptOut",
]
