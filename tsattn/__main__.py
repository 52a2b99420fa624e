from tsattn.cli import main

raise SystemExit(main())
