module ironlambda/go-runtime-api

go 1.19
