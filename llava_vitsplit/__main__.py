import sys

from llava_vitsplit.cli import main

sys.exit(main())
