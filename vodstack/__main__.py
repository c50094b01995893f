from vodstack.cli import main

raise SystemExit(main())
