import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # for `import pgbouncer_support`, `import deploy_files`
