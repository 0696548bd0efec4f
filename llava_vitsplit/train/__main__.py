import sys

from llava_vitsplit.train.train import main

sys.exit(main())
