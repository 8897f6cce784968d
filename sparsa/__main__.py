from sparsa.cli import main

raise SystemExit(main())
