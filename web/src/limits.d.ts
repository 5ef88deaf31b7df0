// Defined by vite.config.ts from the schema's @maxLength on CreateTodoInput.title.
declare const __MAX_TITLE_LENGTH__: number;
