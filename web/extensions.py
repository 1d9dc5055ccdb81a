"""Flask extensions, created once and bound to the app in create_app."""
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# In memory per process: enough to slow password guessing on one machine.
limiter = Limiter(key_func=get_remote_address, default_limits=[], storage_uri="memory://")
