from dfnas.cli import main

raise SystemExit(main())
