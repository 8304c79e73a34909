"""OAuth 2 for Segment and Dreamdata (being written on the oauth branch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .http import Auth

if TYPE_CHECKING:
    from ..options import Options


class OAuth:
    """Bearer tokens from a client assertion."""

    @classmethod
    def from_options(cls, options: Options) -> Auth:
        raise ConfigurationError("oauth_client_id: OAuth 2 is not available in this build")
