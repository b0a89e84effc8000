"""Password hashing, a toy one (the template uses passlib; this sample keeps no dependency)."""

import hashlib
import hmac


def get_password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def verify_password(plain_password: str, hashed_password: str) -> bool:
    return hmac.compare_digest(get_password_hash(plain_password), hashed_password)
